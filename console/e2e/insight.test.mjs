// 人群洞察 (issue 14 §4): a segment against all customers, the table is the
// API's (GET /v1/segments/{id}/insight), the charts are drawn, the base can
// be another segment, and the page passes the accessibility checks.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { open, api, axe, keyboard, shot, skip } from './lib.mjs'

let s
const created = []
before(async () => {
  if (!skip) s = await open('zh-CN')
})
after(async () => {
  for (const id of created.reverse()) await api('DELETE', `/v1/segments/${id}`)
  if (s) await s.browser.close()
})

test('insight: TGI and shares of a segment against everyone are the API\'s', { skip }, async () => {
  const { page, errors } = s
  const high = await api('POST', '/v1/segments', { name: `e2e 洞察 高消费 ${Date.now()}`, condition: { trait: 'revenue', op: '>=', value: 1000 } })
  assert.equal(high.status, 201, JSON.stringify(high.body))
  created.push(high.body.id)
  const sh = await api('POST', '/v1/segments', { name: `e2e 洞察 上海 ${Date.now()}`, condition: { region: { province: '上海' } } })
  assert.equal(sh.status, 201, JSON.stringify(sh.body))
  created.push(sh.body.id)

  const want = await api('GET', `/v1/segments/${high.body.id}/insight?base=all`)
  assert.equal(want.status, 200, JSON.stringify(want.body))
  assert.ok(want.body.attributes.length > 0, 'the demo has categorical traits and tags to compare')
  const sig = want.body.attributes.filter((a) => a.significant)
  assert.ok(sig.length > 0, 'high spenders differ from everyone in something (rfm segment, value tags)')

  await page.goto(`/insight/${high.body.id}`)
  await page.getByRole('heading', { name: '人群洞察', level: 1 }).waitFor({ timeout: 60000 })
  const summary = page.locator('[data-test=insight-summary]')
  await summary.waitFor({ timeout: 60000 })
  assert.ok((await summary.textContent()).includes(want.body.target_size.toLocaleString('zh-CN')), 'the target size is shown')

  // The first rows are the API's ranking, TGI rounded.
  const rows = page.locator('[data-test=insight-attributes] .el-table__body-wrapper .el-table__row')
  await rows.first().waitFor({ timeout: 60000 })
  for (let i = 0; i < Math.min(3, want.body.attributes.length); i++) {
    const a = want.body.attributes[i]
    const text = await rows.nth(i).textContent()
    assert.ok(text.includes(a.value), `row ${i} is ${a.attribute}=${a.value}: ${text}`)
    assert.equal((await rows.nth(i).locator('[data-test=tgi]').textContent()).trim(), String(Math.round(a.tgi)))
  }
  // Both charts are drawn from the significant rows.
  await page.locator('[data-test=tgi-chart] canvas').first().waitFor({ timeout: 60000 })
  await page.locator('[data-test=share-chart] canvas').first().waitFor({ timeout: 60000 })
  // Numeric traits: revenue is among them, and significant (the segment is defined by it).
  const numeric = await page.locator('[data-test=insight-numeric]').textContent()
  assert.ok(numeric.includes('revenue'), 'revenue is compared')

  // Only significant: the table shrinks to the API's significant rows.
  await page.locator('[data-test=only-significant]').click()
  await page.waitForFunction((n) => document.querySelectorAll('[data-test=insight-attributes] .el-table__body-wrapper .el-table__row').length === n, sig.length, { timeout: 60000 })

  await shot(page, 'insight', { fullPage: true })
  await axe(page, 'insight')
  await keyboard(page, 'insight')

  // Against another segment: the URL keeps the base and the summary follows the API.
  const vs = await api('GET', `/v1/segments/${high.body.id}/insight?base=${sh.body.id}`)
  assert.equal(vs.status, 200)
  await page.goto(`/insight/${high.body.id}?base=${sh.body.id}`)
  await page.locator('[data-test=insight-summary]', { hasText: vs.body.base_size.toLocaleString('zh-CN') }).waitFor({ timeout: 60000 })
  assert.deepEqual(errors, [])
})
