// 对公客户 (issue 16): the ICP ranking as the API ranks it, with reasons
// and flags; an account's portrait with its coverage gaps and the buying
// committee as an organisation chart by level, presumed roles marked and
// verified in place by the signed-in user.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { open, api, shot, skip } from './lib.mjs'

let s
before(async () => {
  if (!skip) s = await open('zh-CN')
})
after(async () => {
  if (s) await s.browser.close()
})

test('accounts: ICP ranking, portrait, committee by level, verification', { skip }, async () => {
  const { page, errors } = s
  const list = await api('GET', '/v1/accounts?sort=icp_score&limit=100')
  assert.equal(list.status, 200)
  assert.ok(list.body.total >= 20, `the demo has companies: ${list.body.total}`)
  const ranked = list.body.accounts
  for (let i = 1; i < ranked.length; i++) assert.ok(ranked[i].icp_score <= ranked[i - 1].icp_score, 'best first')

  await page.goto('/accounts')
  await page.getByRole('heading', { name: '对公客户', level: 1 }).waitFor()
  const table = page.locator('[data-test=ranking]')
  await table.locator(`a[data-account="${ranked[0].id}"]`).waitFor()
  assert.equal(await table.locator('.el-table__body tr.el-table__row').count(), ranked.length)
  // Rows in the API's order with its scores.
  const names = await table.locator('.el-table__body tr.el-table__row a[data-account]').allTextContents()
  assert.deepEqual(names, ranked.map((r) => r.name))
  assert.equal((await table.locator('[data-test=icp]').first().textContent()).trim(), ranked[0].icp_score.toFixed(1))
  const flagged = ranked.filter((r) => r.flag).length
  assert.equal(await table.locator('[data-test=flag]').count(), flagged)
  // The reasons behind the top score.
  await table.locator('.el-table__expand-icon').first().click()
  const reasons = page.locator(`ul.reasons[data-account="${ranked[0].id}"] li`)
  await reasons.first().waitFor()
  assert.equal(await reasons.count(), ranked[0].icp_reasons.length)
  const icp = await api('GET', '/v1/accounts/icp')
  if (icp.body.learned) await page.locator('[data-test=auc]').getByText(icp.body.learned.auc.toFixed(3)).waitFor()
  await shot(page, 'accounts')

  // An account with a presumed role: its portrait and committee.
  let target = null
  let presumed = null
  for (const a of ranked) {
    const ps = await api('GET', `/v1/accounts/${a.id}/people`)
    presumed = ps.body.people.find((p) => p.role && p.role.status === 'presumed' && p.role.level)
    if (presumed) {
      target = a
      break
    }
  }
  assert.ok(target, 'the demo has presumed roles')
  await table.locator(`a[data-account="${target.id}"]`).click()
  await page.waitForURL(`**/accounts/${target.id}`)
  const acc = await api('GET', `/v1/accounts/${target.id}`)
  await page.getByRole('heading', { name: acc.body.name, level: 1 }).waitFor()
  // The API's gaps, one line each in its order, said from their codes
  // (words.test.mjs checks the Chinese).
  const gaps = page.locator('[data-test=gaps] li')
  assert.equal(await gaps.count(), acc.body.coverage.gaps.length || 1)
  if (acc.body.coverage.gaps.length) assert.deepEqual(await gaps.evaluateAll((ls) => ls.map((l) => l.dataset.gapCode)), acc.body.coverage.gap_codes.map((g) => g.code))
  else assert.equal((await gaps.first().textContent()).trim(), '决策链已完整覆盖')
  for (const [role, st] of Object.entries(acc.body.coverage.roles)) {
    assert.equal(await page.locator(`[data-test=coverage] [data-role="${role}"]`).getAttribute('data-status'), st)
  }
  // Each key person sits at their level, with their status.
  const people = (await api('GET', `/v1/accounts/${target.id}/people`)).body.people
  for (const p of people.filter((x) => x.role && x.role.level)) {
    const card = page.locator(`[data-level="${p.role.level}"] [data-person="${p.person}"]`)
    await card.waitFor()
    assert.equal(await card.locator('.mark').getAttribute('data-status'), p.role.status)
  }
  await shot(page, 'account')

  // Verified in place, by the signed-in user, and the gap goes.
  const card = page.locator(`[data-person="${presumed.person}"]`)
  await card.locator('[data-test=verify]').click()
  await page.locator('[data-test=notice]').waitFor()
  await card.locator('.mark[data-status="verified"]').waitFor()
  const after = (await api('GET', `/v1/accounts/${target.id}/people`)).body.people.find((p) => p.person === presumed.person)
  assert.equal(after.role.status, 'verified')
  assert.ok(after.role.verified_by, 'verified by a named user')
  assert.ok(after.role.verified_at)
  const acc2 = await api('GET', `/v1/accounts/${target.id}`)
  assert.equal(acc2.body.coverage.roles[presumed.role.role], 'verified')
  assert.ok(!acc2.body.coverage.gaps.includes(`${presumed.role.role} presumed, not verified`), acc2.body.coverage.gaps.join('; '))
  assert.deepEqual(errors, [])
})
