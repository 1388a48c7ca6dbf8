// 相似客户 (issue 16 in the console): the lookalike list on the accounts
// page, seeded by won accounts by default or by accounts ticked in the
// ranking, with the API's scores, reasons and held-out evaluation; a seed
// set too small gets the API's message in place. Both languages; axe.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { open, api, axe, shot, skip, setLang } from './lib.mjs'

let s
before(async () => {
  if (!skip) s = await open('zh-CN')
})
after(async () => {
  if (s) await s.browser.close()
})

async function checkList(page, want) {
  const list = page.locator('[data-test=lookalike-list]')
  await list.locator(`a[data-lookalike="${want.accounts[0].id}"]`).waitFor()
  const names = await list.locator('.el-table__body tr.el-table__row a[data-lookalike]').allTextContents()
  assert.deepEqual(names, want.accounts.map((a) => a.name))
  const scores = await list.locator('[data-test=lookalike-score]').allTextContents()
  assert.deepEqual(scores, want.accounts.map((a) => (a.score * 100).toFixed(1) + '%'))
  const why = await list.locator(`[data-why="${want.accounts[0].id}"] li`).allTextContents()
  assert.deepEqual(why.map((x) => x.trim()), want.accounts[0].reasons.map((r) => r.text))
  const ev = page.locator('[data-test=lookalike-eval]')
  assert.equal((await ev.locator('[data-test=seed-size]').textContent()).trim(), String(want.seed_size))
  assert.equal((await ev.locator('[data-test=held-out]').textContent()).trim(), String(want.held_out))
  assert.equal((await ev.locator('[data-test=lookalike-auc]').textContent()).trim(), want.auc == null ? '—' : want.auc.toFixed(3))
}

test('accounts: lookalikes of won accounts and of chosen ones, with the evaluation', { skip }, async () => {
  const { page, errors } = s
  const won = await api('GET', '/v1/accounts/lookalike?seed=won&limit=20')
  assert.equal(won.status, 200, JSON.stringify(won.body))
  assert.ok(won.body.lookalike.accounts.length > 0, 'the demo has won accounts to look like')

  await page.goto('/accounts')
  await page.getByRole('heading', { name: '相似客户', level: 2 }).waitFor()
  await page.locator('[data-test=find-lookalike]').click()
  await checkList(page, won.body.lookalike)
  await axe(page, 'accounts lookalike')
  await shot(page, 'accounts-lookalike')

  // Too few chosen seeds: the API's message in place, no list.
  const table = page.locator('[data-test=ranking]')
  await table.locator('.el-table__body tr.el-table__row .el-checkbox').first().click()
  await page.locator('[data-test=seed-chosen]').click()
  await page.locator('[data-test=find-lookalike]').click()
  const one = (await api('GET', '/v1/accounts?sort=icp_score&limit=100')).body.accounts
  const few = await api('GET', '/v1/accounts/lookalike?limit=20&seed=' + one[0].id)
  assert.equal(few.status, 400)
  await page.locator('.api-error, [role=alert]').filter({ hasText: few.body.error?.message || few.body.message || '' }).first().waitFor()

  // Twelve chosen accounts: the lookalikes of those.
  const rows = table.locator('.el-table__body tr.el-table__row .el-checkbox')
  for (let i = 1; i < 12; i++) await rows.nth(i).click()
  const chosen = one.slice(0, 12).map((a) => a.id)
  const want = await api('GET', '/v1/accounts/lookalike?limit=20&seed=' + chosen.join(','))
  assert.equal(want.status, 200, JSON.stringify(want.body))
  await page.locator('[data-test=find-lookalike]').click()
  await page.locator('[data-test=seed-size]').getByText(String(want.body.lookalike.seed_size), { exact: true }).waitFor()
  await checkList(page, want.body.lookalike)

  // English labels.
  await setLang(page, 'en')
  await page.getByRole('heading', { name: 'Lookalike accounts', level: 2 }).waitFor()
  await page.getByText('Held-out AUC').waitFor()
  assert.deepEqual(errors, [])
})
