// The one helper library of the console's browser tests: Debian's chromium
// driven by playwright-core, sign-in (through the page or POST /v1/session),
// the admin API beside the page, axe-core, a keyboard walk, screenshots and
// the bytes a page load transfers. The Go test e2e/console_test.go starts
// `portrait demo` and one Chromium, and sets the environment (PORTRAIT_URL,
// PORTRAIT_ADMIN_TOKEN, PORTRAIT_SCREENSHOTS, CHROMIUM, PORTRAIT_CDP);
// without it the tests skip and say why.
import { chromium } from 'playwright-core'
import { readFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import assert from 'node:assert/strict'

const require = createRequire(import.meta.url)
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')

export const base = process.env.PORTRAIT_URL || ''
export const token = process.env.PORTRAIT_ADMIN_TOKEN || ''
export const shots = process.env.PORTRAIT_SCREENSHOTS || ''
export const skip = !base || !token ? 'PORTRAIT_URL and PORTRAIT_ADMIN_TOKEN are not set (run through go test ./e2e/ -run TestConsole)' : false
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium'
// The Go test starts one Chromium for every test file and names its
// DevTools endpoint here: starting a browser per file cost more than most
// files' own work.
const shared = process.env.PORTRAIT_CDP || ''

// browserFor connects to the shared browser, or launches one of its own
// when a file runs alone. Either way the caller's browser.close() ends
// what it made: a connected browser closes the contexts it created and
// disconnects, leaving the shared one to the other files.
function browserFor() {
  if (shared) return chromium.connectOverCDP(shared)
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
}

// launch opens a fresh browser context (a new incognito-like profile:
// nothing cached, no cookies or storage from any other test, so first-load
// measurements stay cold), not signed in. With lang, the console starts in
// that language (its switch stores the choice in localStorage) and the
// browser's locale is the same.
export async function launch({ lang } = {}) {
  const browser = await browserFor()
  const context = await browser.newContext({ baseURL: base, viewport: { width: 1440, height: 900 }, locale: lang || 'en-US', acceptDownloads: true })
  if (lang) await context.addInitScript((l) => localStorage.setItem('portrait.lang', l), lang)
  const page = await context.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e)))
  return { browser, context, page, errors }
}

// open is launch, signed in through POST /v1/session with the admin token
// (the console's own sign-in exchange); csrf is the session's CSRF token.
export async function open(lang = 'zh-CN') {
  const s = await launch({ lang })
  const r = await s.context.request.post('/v1/session', { data: { token } })
  assert.equal(r.status(), 200, `sign-in: ${await r.text()}`)
  s.csrf = (await r.json()).csrf_token
  return s
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

// api calls the API with the admin token, as the tests' source of truth:
// the figures the console must show. body is JSON when it parses, else text.
export async function api(method, p, body) {
  const r = await fetch(base + p, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await r.text()
  let json
  try {
    json = JSON.parse(text)
  } catch {
    json = text
  }
  return { status: r.status, body: json }
}

// shot saves a screenshot into PORTRAIT_SCREENSHOTS (docs/screenshots when
// the Go test is asked to update them).
export async function shot(page, name, { fullPage = false } = {}) {
  if (!shots) return
  mkdirSync(shots, { recursive: true })
  await page.screenshot({ path: path.join(shots, name + '.png'), fullPage })
}

// axe runs axe-core on the page: no serious or critical violations. It is
// evaluated rather than added as a <script>, which the console's
// Content-Security-Policy rightly refuses, so the pages run under their
// real CSP.
export async function axe(page, label) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(axeSource)
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] })
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 8).map((n) => n.target.join(' ') + ' — ' + (n.failureSummary || '').split('\n').slice(1, 2).join('')) }))
  })
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical')
  assert.deepEqual(bad, [], `${label}: axe-core found serious or critical violations:\n${JSON.stringify(bad, null, 1)}`)
}

// keyboard tabs through the page and requires every visible control
// (links, buttons, inputs, the selected radio and tab, tabindex=0) to be
// reached by the keyboard alone. Of a table's rows only the first counts:
// the others repeat its controls, and walking them all proves nothing more.
export async function keyboard(page, label) {
  await page.evaluate(() => {
    document.activeElement?.blur?.()
    window.__seen = new Set()
    document.addEventListener('focusin', (e) => window.__seen.add(e.target), true)
    const all = document.querySelectorAll(
      'a[href], button, input:not([type=hidden]):not([type=radio]):not([type=checkbox]):not([type=file]), input[type=radio]:checked, textarea, select, [role=tab][aria-selected=true], [tabindex="0"]',
    )
    window.__controls = [...all].filter((el) => {
      if (el.disabled || el.tabIndex < 0 || el.closest('[aria-hidden=true]') || el.closest('.el-table__body-wrapper .el-table__row ~ .el-table__row')) return false
      const r = el.getBoundingClientRect()
      const s = getComputedStyle(el)
      return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'
    })
  })
  const n = await page.evaluate(() => window.__controls.length)
  // The Tab presses are the key events page.keyboard.press sends, sent
  // straight to DevTools ten at a time and checked after each ten: one
  // awaited press with a check after it cost ~40 ms on a quiet machine
  // and ~10x that under load (4-10 s per page), and the browser handles
  // the queued presses one after another all the same (the focus moves
  // through the same elements in the same order).
  const cdp = await page.context().newCDPSession(page)
  const key = (type) => cdp.send('Input.dispatchKeyEvent', { type, key: 'Tab', code: 'Tab', windowsVirtualKeyCode: 9 })
  try {
    const limit = Math.min(n * 2 + 10, 400)
    for (let i = 0; i < limit; i += 10) {
      await Promise.all(Array.from({ length: Math.min(10, limit - i) }, () => [key('rawKeyDown'), key('keyUp')]).flat())
      const done = await page.evaluate(() => window.__controls.every((c) => window.__seen.has(c) || [...window.__seen].some((s) => c.contains(s))))
      if (done) break
    }
  } finally {
    await cdp.detach()
  }
  const missed = await page.evaluate(() =>
    window.__controls
      .filter((c) => !window.__seen.has(c) && ![...window.__seen].some((s) => c.contains(s)))
      .map((c) => `${c.tagName.toLowerCase()}${c.id ? '#' + c.id : ''} "${(c.innerText || c.getAttribute('aria-label') || c.getAttribute('placeholder') || '').trim().slice(0, 40)}"`),
  )
  assert.deepEqual(missed, [], `${label}: controls not reachable by Tab`)
}

// noBlank fails when the page shows nothing (an error must be in place).
export async function noBlank(page, errors, label) {
  const text = (await page.locator('main').innerText()).trim()
  assert.ok(text.length > 20, `${label}: the page is blank`)
  assert.deepEqual(errors, [], `${label}: script errors`)
}

// transferred loads path in a fresh page of the context (nothing cached)
// and sums the bytes that came over the wire (encoded bodies plus headers)
// until ready (a selector) is shown and the network is idle, and how long
// each API call behind the page took (request sent to body received).
export async function transferred(context, p, ready) {
  const page = await context.newPage()
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true })
  let bytes = 0
  let requests = 0
  const calls = []
  const started = new Map()
  cdp.on('Network.requestWillBeSent', (e) => {
    if (new URL(e.request.url).pathname.startsWith('/v1/')) started.set(e.requestId, { url: e.request.url, t: e.timestamp })
  })
  cdp.on('Network.loadingFinished', (e) => {
    bytes += e.encodedDataLength
    requests++
    const st = started.get(e.requestId)
    if (st) calls.push({ path: new URL(st.url).pathname + new URL(st.url).search, ms: (e.timestamp - st.t) * 1000 })
  })
  await page.goto(p, { waitUntil: 'networkidle' })
  if (ready) {
    await page.locator(ready).first().waitFor({ timeout: 30000 })
    await page.waitForLoadState('networkidle')
  }
  await page.close()
  return { bytes, requests, api: calls }
}
