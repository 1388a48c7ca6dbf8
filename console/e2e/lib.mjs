// Helpers of the console's browser tests: Debian's chromium driven by
// playwright-core, axe-core injected into each page, screenshots. The Go
// test e2e/console_test.go starts `portrait demo` and sets the environment.
import { chromium } from 'playwright-core'
import { readFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import assert from 'node:assert/strict'

const require = createRequire(import.meta.url)
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')

export const base = process.env.PORTRAIT_URL || 'http://127.0.0.1:8080'
export const token = process.env.PORTRAIT_ADMIN_TOKEN || ''
const shots = process.env.PORTRAIT_SCREENSHOTS || ''
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium'

// launch starts a fresh headless Chromium (its own temporary profile).
export async function launch() {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  // bypassCSP: axe-core is injected as an inline script, which the
  // console's Content-Security-Policy rightly refuses.
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'en-US', bypassCSP: true, acceptDownloads: true })
  const page = await context.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e)))
  return { browser, context, page, errors }
}

// signIn signs in through the sign-in page with the admin token.
export async function signIn(page, next = '/') {
  await page.goto(base + '/signin?next=' + encodeURIComponent(next))
  await page.locator('#token').fill(token)
  await page.getByRole('button', { name: /Sign in|登录/ }).click()
  await page.waitForURL((u) => !u.pathname.startsWith('/signin'))
}

// setLang picks the console's language through its switch.
export async function setLang(page, lang) {
  await page.locator(`[data-lang="${lang}"]`).first().click()
}

// api calls the server directly with the admin token: the figures the
// console must show.
export async function api(p) {
  const resp = await fetch(base + p, { headers: { Authorization: 'Bearer ' + token } })
  const body = await resp.json().catch(() => null)
  return { status: resp.status, body }
}

// shot saves a screenshot into PORTRAIT_SCREENSHOTS (docs/screenshots when
// the Go test is asked to update them).
export async function shot(page, name) {
  if (!shots) return
  mkdirSync(shots, { recursive: true })
  await page.screenshot({ path: path.join(shots, name + '.png'), fullPage: false })
}

// checkA11y runs axe-core on the page: no serious or critical violations.
export async function checkA11y(page, label) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) {
    await page.addScriptTag({ content: axeSource })
  }
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] })
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 8).map((n) => n.target.join(' ') + ' — ' + (n.failureSummary || '').split('\n').slice(1, 2).join('')) }))
  })
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical')
  assert.deepEqual(bad, [], `${label}: axe-core found serious or critical violations:\n${JSON.stringify(bad, null, 1)}`)
}

// checkKeyboard tabs through the page and requires every visible control
// (links, buttons, text inputs) to be reached by the keyboard alone.
export async function checkKeyboard(page, label) {
  await page.evaluate(() => {
    document.activeElement?.blur?.()
    window.__seen = new Set()
    document.addEventListener('focusin', (e) => window.__seen.add(e.target), true)
    const all = document.querySelectorAll('a[href], button, input:not([type=radio]):not([type=checkbox]):not([type=file]), textarea, select, [role=tab][aria-selected=true]')
    window.__controls = [...all].filter((el) => {
      if (el.disabled || el.closest('[aria-hidden=true]') || el.closest('.el-table__body-wrapper .el-table__row ~ .el-table__row')) return false
      const r = el.getBoundingClientRect()
      const s = getComputedStyle(el)
      return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'
    })
  })
  const n = await page.evaluate(() => window.__controls.length)
  for (let i = 0; i < Math.min(n * 2 + 10, 400); i++) {
    await page.keyboard.press('Tab')
    const done = await page.evaluate(() => window.__controls.every((c) => window.__seen.has(c) || c.contains(document.activeElement)))
    if (done) break
  }
  const missed = await page.evaluate(() =>
    window.__controls.filter((c) => !window.__seen.has(c)).map((c) => `${c.tagName.toLowerCase()}${c.id ? '#' + c.id : ''} "${(c.innerText || c.getAttribute('aria-label') || c.getAttribute('placeholder') || '').trim().slice(0, 40)}"`),
  )
  assert.deepEqual(missed, [], `${label}: controls not reachable by Tab`)
}

// noBlank fails when the page shows nothing (an error must be in place).
export async function noBlank(page, errors, label) {
  const text = (await page.locator('main').innerText()).trim()
  assert.ok(text.length > 20, `${label}: the page is blank`)
  assert.deepEqual(errors, [], `${label}: script errors`)
}
