// Page 4, 客户细分: build a segment from the controls, the live count equals
// what POST /v1/segments/preview answers for the same tree, save it, export
// it (CSV and XLSX), see members, history and explain-why. The overlap,
// every kind of control and a missing segment are in
// segments-more.test.mjs: node --test gives each file one budget
// (--test-timeout, e2e/console_test.go), and under load this test alone
// took 80-140 s of it, so the tests after it were cut off at 180 s.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { open, api, axe, keyboard, shot, skip } from './lib.mjs'

let s
const created = [] // segments a test saved, deleted whatever the outcome
before(async () => {
  if (!skip) s = await open('zh-CN')
})
after(async () => {
  for (const id of created) await api('DELETE', `/v1/segments/${id}`)
  if (s) await s.browser.close()
})

async function selectOption(page, trigger, text, exact = false) {
  await trigger.click()
  const items = page.locator('.el-select-dropdown:visible .el-select-dropdown__item')
  const opt = exact ? items.filter({ has: page.getByText(text, { exact: true }) }).first() : items.filter({ hasText: text }).first()
  await opt.click()
}

test('segment builder: live count equals the API, save, export, explain', { skip }, async () => {
  const { page, errors } = s
  const name = `e2e 广东高消费 ${Date.now()}`
  await page.goto('/segments')
  await page.getByRole('heading', { name: '客户细分', level: 1 }).waitFor()

  // trait: revenue >= 1000
  await page.locator('[data-add=trait]').first().click()
  const rule = page.locator('.rule[data-kind=trait]').first()
  await selectOption(page, rule.locator('.el-select').first(), 'revenue (number)')
  await selectOption(page, rule.locator('.el-select').nth(1), '大于等于')
  await rule.locator('input[aria-label="值"]').fill('1000')
  // region: 广东
  await page.locator('[data-add=region]').first().click()
  await page.locator('.rule[data-kind=region] input[aria-label^="省份"]').fill('广东')

  const want = {
    all: [
      { trait: 'revenue', op: '>=', value: 1000 },
      { region: { province: '广东' } },
    ],
  }
  const expr = page.locator('[data-test=expression]')
  await assert.doesNotReject(() => expr.filter({ hasText: 'in_region("广东")' }).waitFor({ timeout: 10000 }))
  assert.equal((await expr.textContent()).trim(), 'traits.revenue >= 1000 && in_region("广东")')

  const answer = await api('POST', '/v1/segments/preview', { name: 'x', condition: want })
  assert.equal(answer.status, 200, JSON.stringify(answer.body))
  assert.ok(answer.body.size > 0, 'the demo has high spenders in 广东')
  const count = page.locator('[data-test=live-count-value]')
  await page.waitForFunction((n) => document.querySelector('[data-test=live-count-value]')?.textContent?.replace(/,/g, '') === String(n), answer.body.size, { timeout: 15000 })
  assert.equal((await count.textContent()).replace(/,/g, ''), String(answer.body.size))

  // The JSON view is the tree the API took.
  await page.getByRole('radio', { name: 'JSON' }).check({ force: true })
  assert.deepEqual(JSON.parse(await expr.textContent()), want)

  // An invalid edit shows the API's message in place, not a blank page.
  await page.locator('[data-add=event]').first().click()
  const ev = page.locator('.rule[data-kind=event]').first()
  await selectOption(page, ev.locator('.el-select').first(), 'Order Completed')
  await ev.locator('input[aria-label="值"]').fill('abc')
  await page.locator('.api-error', { hasText: 'compare it with a number' }).waitFor({ timeout: 15000 })
  await ev.locator('input[aria-label="值"]').fill('1')
  await page.locator('.api-error').waitFor({ state: 'detached', timeout: 15000 })
  await ev.getByRole('button', { name: '删除条件' }).click()
  await page.waitForFunction((n) => document.querySelector('[data-test=live-count-value]')?.textContent?.replace(/,/g, '') === String(n), answer.body.size, { timeout: 15000 })

  // Save.
  await page.locator(':is(input,textarea)[data-test=segment-name]').fill(name)
  await page.locator('[data-test=save-segment]').click()
  await page.waitForURL(/\/segments\/[^/]+$/, { timeout: 15000 })
  const id = decodeURIComponent(page.url().split('/').pop())
  created.push(id)
  const saved = await api('GET', `/v1/segments/${id}`)
  assert.equal(saved.status, 200)
  assert.equal(saved.body.name, name)
  assert.deepEqual(saved.body.condition, want)
  await page.locator('[data-test=segment-size]').filter({ hasText: saved.body.size.toLocaleString('zh-CN') }).waitFor()

  // Members: the first page is the API's first page.
  const members = await api('GET', `/v1/segments/${id}/members?limit=20`)
  await page.locator('[data-test=members] .el-table__row').first().waitFor()
  const firstId = (await page.locator('[data-test=members] .el-table__row').first().locator('a').textContent()).trim()
  assert.equal(firstId, members.body.members[0].id)

  // Export CSV: every member, one row each.
  const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('[data-test=export-csv]').click()])
  const csv = readFileSync(await dl.path(), 'utf8').trim().split('\n')
  assert.equal(csv[0].split(',')[0], 'id')
  assert.equal(csv.length - 1, saved.body.size)
  const [dx] = await Promise.all([page.waitForEvent('download'), page.locator('[data-test=export-xlsx]').click()])
  assert.equal(readFileSync(await dx.path()).subarray(0, 2).toString(), 'PK', 'an XLSX file is a zip')

  // Explain-why for the first member.
  await page.locator('[data-test=members] .el-table__row').first().getByRole('button', { name: '为何在此' }).click()
  await page.locator('[data-test=explanation]').filter({ hasText: '是该细分成员' }).waitFor()
  // History: the saved segment's enters are charted with their table.
  await page.locator('[data-test=segment-detail] .chart canvas').first().waitFor({ timeout: 15000 })

  await shot(page, 'segments', { fullPage: true })
  await axe(page, 'segments')
  await keyboard(page, 'segments')
  assert.deepEqual(errors, [])
})
