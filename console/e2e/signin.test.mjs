import { test } from 'node:test'
import assert from 'node:assert/strict'
import { launch, base, token, signIn, shot, axe, keyboard, skip } from './lib.mjs'

test('the one-time link of portrait demo signs in, once', { skip }, async () => {
  const link = process.env.PORTRAIT_SIGNIN_LINK
  if (!link) return
  const { browser, page } = await launch()
  try {
    await page.goto(link)
    await page.waitForURL(base + '/')
    await page.locator('[data-menu=overview]').waitFor()
    // The link is spent: a second browser lands on sign-in with a reason.
    const other = await launch()
    try {
      await other.page.goto(link)
      await other.page.waitForURL(/\/signin\?reason=link/)
      await other.page.getByText(/sign-in link was used|登录链接已使用/).waitFor()
    } finally {
      await other.browser.close()
    }
  } finally {
    await browser.close()
  }
})

test('sign-in page: a wrong token shows the API message in place, a right one signs in', { skip }, async () => {
  const { browser, page, errors } = await launch()
  try {
    await page.goto(base + '/profiles')
    // Not signed in: sign-in, remembering the page asked for.
    await page.waitForURL((u) => u.pathname === '/signin' && u.searchParams.get('next') === '/profiles')
    await axe(page, 'sign-in')
    await keyboard(page, 'sign-in')
    await shot(page, 'signin')
    await page.locator('#token').fill('pat_wrong-token')
    await page.getByRole('button', { name: /Sign in|登录/ }).click()
    await page.getByRole('alert').getByText('this is not a valid admin token').waitFor()
    await page.locator('#token').fill(token)
    await page.getByRole('button', { name: /Sign in|登录/ }).click()
    await page.waitForURL(base + '/profiles')
    assert.deepEqual(errors, [])
  } finally {
    await browser.close()
  }
})

test('an expired session returns to sign-in and back to the same page', { skip }, async () => {
  const { browser, context, page } = await launch()
  try {
    await signIn(page, '/data')
    await page.waitForURL(base + '/data')
    await page.locator('[data-test=quality] .pt-stat').first().waitFor()
    // The session ends (as after a server restart or 8 idle hours).
    await context.clearCookies()
    await page.locator('[data-menu=overview]').click()
    await page.waitForURL((u) => u.pathname === '/signin' && u.searchParams.get('reason') === 'expired' && u.searchParams.get('next') === '/')
    await page.locator('[data-test=expired]').waitFor()
    const next = new URL(page.url()).searchParams.get('next')
    await page.locator('#token').fill(token)
    await page.getByRole('button', { name: /Sign in|登录/ }).click()
    await page.waitForURL(base + next)
  } finally {
    await browser.close()
  }
})

test('sign-out ends the session', { skip }, async () => {
  const { browser, context, page } = await launch()
  try {
    await signIn(page)
    await page.locator('[data-menu=overview]').waitFor()
    const before = (await context.cookies()).find((c) => c.name === 'portrait_session')
    assert.ok(before && before.httpOnly && before.sameSite === 'Strict', 'session cookie flags')
    await page.locator('[data-test=signout]').click()
    await page.locator('#token').waitFor()
    const after = (await context.cookies()).find((c) => c.name === 'portrait_session')
    assert.equal(after, undefined, 'the cookie is cleared')
    // The old cookie is dead on the server too.
    const r = await fetch(base + '/v1/session', { headers: { Cookie: 'portrait_session=' + before.value } })
    assert.equal(r.status, 401)
  } finally {
    await browser.close()
  }
})
