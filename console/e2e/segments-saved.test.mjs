// Page 4, 客户细分, a saved segment (segments.test.mjs builds and saves one
// through the page; this file saves the same tree through the API, so its
// budget goes on what the saved segment shows): members, the first page
// the API's first page; CSV and XLSX export of every member; explain-why
// for a member; the enter/exit history charted; axe and the keyboard on
// the whole page, the builder holding the saved tree above the detail.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { open, api, axe, keyboard, shot, skip } from './lib.mjs'

let s
const created = [] // deleted whatever the outcome
before(async () => {
  if (!skip) s = await open('zh-CN')
})
after(async () => {
  for (const id of created) await api('DELETE', `/v1/segments/${id}`)
  if (s) await s.browser.close()
})

test('saved segment: members, CSV/XLSX export, explain-why, history', { skip }, async () => {
  const { page, errors } = s
  const want = {
    all: [
      { trait: 'revenue', op: '>=', value: 1000 },
      { region: { province: '广东' } },
    ],
  }
  const saved = await api('POST', '/v1/segments', { name: `e2e 广东高消费 ${Date.now()}`, condition: want })
  assert.equal(saved.status, 201, JSON.stringify(saved.body))
  const id = saved.body.id
  created.push(id)
  assert.ok(saved.body.size > 0, 'the demo has high spenders in 广东')
  const membersAnswered = api('GET', `/v1/segments/${id}/members?limit=20`)
  await page.goto(`/segments/${encodeURIComponent(id)}`)
  await page.locator('[data-test=segment-size]').filter({ hasText: saved.body.size.toLocaleString('zh-CN') }).waitFor()
  // The builder holds the saved tree.
  await page.locator('[data-test=expression]').filter({ hasText: 'traits.revenue >= 1000 && in_region("广东")' }).waitFor()

  // Members: the first page is the API's first page.
  const members = await membersAnswered
  assert.equal(members.status, 200, JSON.stringify(members.body))
  const first = page.locator('[data-test=members] .el-table__row').first()
  await first.waitFor()
  assert.equal((await first.locator('a').textContent()).trim(), members.body.members[0].id)
  // Its columns are named in words (common.traits), not by the traits' names.
  const heads = (await page.locator('[data-test=members] thead th').allTextContents()).map((h) => h.trim())
  for (const w of ['姓名', '城市', '生命周期', '消费金额', 'RFM 分群']) assert.ok(heads.includes(w), `members table headers ${JSON.stringify(heads)} lack ${w}`)

  // Export CSV: every member, one row each.
  const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('[data-test=export-csv]').click()])
  const csv = readFileSync(await dl.path(), 'utf8').trim().split('\n')
  assert.equal(csv[0].split(',')[0], 'id')
  assert.equal(csv.length - 1, saved.body.size)
  const [dx] = await Promise.all([page.waitForEvent('download'), page.locator('[data-test=export-xlsx]').click()])
  assert.equal(readFileSync(await dx.path()).subarray(0, 2).toString(), 'PK', 'an XLSX file is a zip')

  // Explain-why for the first member.
  await first.getByRole('button', { name: '为何在此' }).click()
  await page.locator('[data-test=explanation]').filter({ hasText: '是该细分成员' }).waitFor()
  // History: the saved segment's enters are charted with their table.
  await page.locator('[data-test=segment-detail] .chart canvas').first().waitFor({ timeout: 15000 })

  await shot(page, 'segments', { fullPage: true })
  await axe(page, 'segments')
  await keyboard(page, 'segments')
  assert.deepEqual(errors, [])
})
