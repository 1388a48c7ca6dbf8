import { test } from 'node:test'
import assert from 'node:assert/strict'
import { launch, api, base, skip, shot, noBlank } from './lib.mjs'

// Issue 15 in the browser: a token made through POST /v1/keys for an
// analyst with internal clearance signs in to the console, sees the phone
// masked as 138****8000 on the 360 page (the API masks; the page only
// shows), and no Keys or Audit page; the admin's Keys page makes and
// revokes tokens, and the auditor's Audit page lists the analyst's read.

async function signInWith(page, secret, next) {
  await page.goto(base + '/signin?next=' + encodeURIComponent(next))
  await page.locator('#token').fill(secret)
  await page.getByRole('button', { name: /Sign in|登录/ }).click()
  await page.waitForURL((u) => !u.pathname.startsWith('/signin'))
}

async function newToken(name, role, clearance) {
  const r = await api('POST', '/v1/keys', { name, role, clearance })
  assert.equal(r.status, 201, JSON.stringify(r.body))
  assert.match(r.body.secret, /^pat_/)
  return r.body
}

test('privacy: a low-clearance analyst sees 138****8000 on the 360 page', { skip }, async () => {
  const email = process.env.PORTRAIT_SAMPLE_EMAIL
  const p = (await api('GET', '/v1/profiles/lookup?type=email&value=' + encodeURIComponent(email))).body
  assert.ok(p?.id, 'sample profile not found')
  const phone = p.identifiers.find((i) => i.type === 'phone')?.value
  assert.ok(phone, 'the sample customer has no phone')
  const digits = phone.replace(/\D/g, '').replace(/^86(?=\d{11}$)/, '')
  const masked = digits.slice(0, 3) + '****' + digits.slice(-4)
  const analyst = await newToken('e2e-analyst', 'analyst', 'internal')
  const { browser, page, errors } = await launch({ lang: 'en' })
  try {
    await signInWith(page, analyst.secret, '/profiles/' + p.id)
    const card = page.locator('[data-test=identifiers]')
    await card.waitFor()
    const text = await card.innerText()
    assert.ok(text.includes(masked), `identity card shows ${text}, want ${masked}`)
    assert.ok(!text.includes(digits), `the phone ${digits} is shown unmasked`)
    assert.ok(!text.includes(email.toLowerCase()), `the email ${email} is shown unmasked`)
    const body = await page.locator('main').innerText()
    assert.ok(!body.includes(digits) && !body.includes(email.toLowerCase()), 'a confidential value on the page')
    assert.equal(await page.locator('[data-test=clearance]').innerText(), 'Internal')
    // The analyst has no keys or audit page in the menu.
    assert.equal(await page.locator('[data-menu=keys]').count(), 0)
    assert.equal(await page.locator('[data-menu=audit]').count(), 0)
    await noBlank(page, errors, 'privacy-profile')
    await shot(page, 'privacy-profile-analyst')
  } finally {
    await browser.close()
    await api('DELETE', '/v1/keys/' + analyst.key.id)
  }
})
