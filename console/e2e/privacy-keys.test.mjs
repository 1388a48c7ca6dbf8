import { test } from 'node:test'
import assert from 'node:assert/strict'
import { launch, api, base, skip, shot } from './lib.mjs'

// Issue 15 in the browser, the admin's and the auditor's side (a file of
// its own: each file has its own time budget): the Keys page makes a
// token with a role, which works at once, and revokes it, which stops it
// at once; the auditor's Audit page lists the revocation and the analyst's
// reads and checks the hash chain.

async function signInWith(page, secret, next) {
  await page.goto(base + '/signin?next=' + encodeURIComponent(next))
  await page.locator('#token').fill(secret)
  await page.getByRole('button', { name: /Sign in|登录/ }).click()
  await page.waitForURL((u) => !u.pathname.startsWith('/signin'))
}

async function newToken(name, role, clearance) {
  const r = await api('POST', '/v1/keys', { name, role, clearance })
  assert.equal(r.status, 201, JSON.stringify(r.body))
  return r.body
}

test('privacy: the Keys page creates and revokes tokens', { skip }, async () => {
  const admin = await newToken('e2e-admin', 'admin', 'secret')
  const { browser, page } = await launch({ lang: 'en' })
  try {
    await signInWith(page, admin.secret, '/keys')
    await page.locator('[data-page=keys]').waitFor()
    await page.locator('.who').getByText('e2e-admin (Administrator)').waitFor()
    await page.locator('[data-test=key-name] input').fill('e2e-sales')
    await page.locator('[data-test=key-role] .el-select').click()
    await page.locator('.el-select-dropdown:visible .el-select-dropdown__item', { hasText: 'Sales' }).click()
    await page.locator('[data-test=key-create]').click()
    const secret = (await page.locator('[data-test=key-secret]').innerText()).trim()
    assert.match(secret, /^pat_/)
    const keys = (await api('GET', '/v1/keys')).body.keys
    const made = keys.find((k) => k.name === 'e2e-sales')
    assert.equal(made?.role, 'sales')
    assert.equal(made?.clearance, 'confidential')
    await page.locator('[data-test=keys-table] .el-table__row', { hasText: 'e2e-sales' }).getByText('Sales', { exact: true }).waitFor()
    // The new token works, then the page revokes it.
    assert.equal((await fetch(base + '/v1/segments', { headers: { Authorization: 'Bearer ' + secret } })).status, 200)
    page.once('dialog', (d) => d.accept())
    await page.locator(`[data-test=revoke-${made.id}]`).click()
    await page.locator(`[data-test=revoke-${made.id}]`).waitFor({ state: 'detached' })
    assert.equal((await fetch(base + '/v1/segments', { headers: { Authorization: 'Bearer ' + secret } })).status, 401)
    await shot(page, 'privacy-keys')
  } finally {
    await browser.close()
    await api('DELETE', '/v1/keys/' + admin.key.id)
  }
})

test("privacy: the auditor's Audit page lists reads and key changes and checks the chain", { skip }, async () => {
  const auditor = await newToken('e2e-auditor', 'auditor', 'public')
  // An analyst reads a customer, and its token is revoked: both audited.
  const reader = await newToken('e2e-reader', 'analyst', 'internal')
  const email = process.env.PORTRAIT_SAMPLE_EMAIL
  const read = await fetch(base + '/v1/profiles/lookup?type=email&value=' + encodeURIComponent(email), { headers: { Authorization: 'Bearer ' + reader.secret } })
  assert.equal(read.status, 403, 'an internal clearance looked a customer up by email') // email is confidential
  const p = (await api('GET', '/v1/profiles/lookup?type=email&value=' + encodeURIComponent(email))).body
  assert.equal((await fetch(base + '/v1/profiles/' + p.id, { headers: { Authorization: 'Bearer ' + reader.secret } })).status, 200)
  await api('DELETE', '/v1/keys/' + reader.key.id)
  const s2 = await launch({ lang: 'zh-CN' })
  try {
    await signInWith(s2.page, auditor.secret, '/audit')
    await s2.page.locator('[data-page=audit]').waitFor()
    // The auditor sees only the audit and keys pages.
    assert.equal(await s2.page.locator('[data-menu=search]').count(), 0)
    await s2.page.locator('[data-test=audit-table]').getByText('key.revoke').first().waitFor()
    // The action in words (audit.actions), the API's name beside it for the filter.
    await s2.page.locator('[data-test=audit-table] .el-table__row', { hasText: 'key.revoke' }).getByText('吊销密钥').first().waitFor()
    await s2.page.locator('[data-test=audit-table]').getByText('e2e-reader').first().waitFor()
    // Roles in words (common.roles), in the shell and the trail, not the API's names.
    await s2.page.locator('.who').getByText('当前用户：e2e-auditor（审计员）').waitFor()
    await s2.page.locator('[data-test=audit-table] .el-table__row', { hasText: 'e2e-reader' }).getByText('(分析师)').first().waitFor()
    await s2.page.locator('[data-test=audit-verify]').click()
    await s2.page.locator('[data-test=audit-verdict]').getByText('哈希链完整').waitFor()
    await shot(s2.page, 'privacy-audit')
  } finally {
    await s2.browser.close()
    await api('DELETE', '/v1/keys/' + auditor.key.id)
  }
})
