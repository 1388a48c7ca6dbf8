// Helpers for the browser tests of pages 4–6 (segments, tags, analytics):
// a signed-in Chromium page, the admin API beside it, axe-core, a keyboard
// walk and screenshots. The environment is the one e2e/console_test.go sets
// (PORTRAIT_URL, PORTRAIT_ADMIN_TOKEN, PORTRAIT_SCREENSHOTS); without it the
// tests skip and say why.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import assert from 'node:assert/strict'

const require = createRequire(import.meta.url)

export const base = process.env.PORTRAIT_URL || ''
export const token = process.env.PORTRAIT_ADMIN_TOKEN || ''
export const shots = process.env.PORTRAIT_SCREENSHOTS || ''
export const skip = !base || !token ? 'PORTRAIT_URL and PORTRAIT_ADMIN_TOKEN are not set (run through go test ./e2e/ -run TestConsole)' : false

function chromiumPath() {
  for (const p of [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']) {
    if (p) {
      try {
        readFileSync(p, { flag: 'r' })
        return p
      } catch {
        // try the next
      }
    }
  }
  return undefined
}

// open starts Chromium with a session (POST /v1/session with the admin
// token, the console's own sign-in exchange) and a language.
export async function open(lang = 'zh-CN') {
  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] })
  const context = await browser.newContext({ baseURL: base, locale: lang, viewport: { width: 1440, height: 1000 }, acceptDownloads: true })
  await context.addInitScript((l) => localStorage.setItem('portrait.lang', l), lang)
  const r = await context.request.post('/v1/session', { data: { token } })
  assert.equal(r.status(), 200, `sign-in: ${await r.text()}`)
  const session = await r.json()
  const page = await context.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e)))
  return { browser, context, page, errors, csrf: session.csrf_token }
}

// api calls the API with the admin token, as the tests' source of truth.
export async function api(method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await r.text()
  let json = null
  try {
    json = JSON.parse(text)
  } catch {
    json = text
  }
  return { status: r.status, body: json }
}

// axe runs axe-core on the page and fails on serious or critical violations.
export async function axe(page, label) {
  // Evaluated, not added as a <script>: the console's CSP refuses inline scripts.
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'))
  const res = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ['violations'] }))
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
  assert.deepEqual(
    bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`),
    [],
    `${label}: axe-core serious/critical violations`,
  )
}

// keyboard tabs through the page and checks that every visible button,
// link and input inside main is reached, up to 400 presses.
export async function keyboard(page, label) {
  const want = await page.evaluate(() => {
    const els = [...document.querySelectorAll('main a[href], main button:not([disabled]), main input:not([disabled]):not([type=hidden]):not([type=radio]:not(:checked)), main [tabindex="0"]')]
    const vis = els.filter((e) => {
      const r = e.getBoundingClientRect()
      const st = getComputedStyle(e)
      return r.width > 0 && r.height > 0 && st.visibility !== 'hidden' && !e.closest('[aria-hidden=true]') && e.tabIndex >= 0
    })
    vis.forEach((e, i) => e.setAttribute('data-kb', String(i)))
    return vis.length
  })
  const seen = new Set()
  await page.evaluate(() => document.activeElement && document.activeElement.blur())
  for (let i = 0; i < 400 && seen.size < want; i++) {
    await page.keyboard.press('Tab')
    const k = await page.evaluate(() => {
      let e = document.activeElement
      while (e && !e.hasAttribute('data-kb')) e = e.parentElement
      // An Element Plus input wraps the real <input>: the focus is inside.
      if (!e) {
        const inner = document.activeElement && document.activeElement.closest && document.activeElement.closest('[data-kb]')
        return inner ? inner.getAttribute('data-kb') : null
      }
      return e.getAttribute('data-kb')
    })
    if (k !== null) seen.add(k)
  }
  const missed = await page.evaluate((seen) => {
    return [...document.querySelectorAll('[data-kb]')].filter((e) => !seen.includes(e.getAttribute('data-kb'))).map((e) => e.outerHTML.slice(0, 120))
  }, [...seen])
  assert.deepEqual(missed, [], `${label}: controls the keyboard does not reach`)
}

export async function screenshot(page, name) {
  if (!shots) return
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true })
}

// transferred loads path in a fresh page of the context (nothing cached)
// and sums the bytes that came over the wire (encoded bodies plus headers)
// until ready (a selector) is shown and the network is idle, and how long
// each API call behind the page took (request sent to body received).
export async function transferred(context, path, ready) {
  const page = await context.newPage()
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true })
  let bytes = 0
  let requests = 0
  const api = []
  const started = new Map()
  cdp.on('Network.requestWillBeSent', (e) => {
    if (new URL(e.request.url).pathname.startsWith('/v1/')) started.set(e.requestId, { url: e.request.url, t: e.timestamp })
  })
  cdp.on('Network.loadingFinished', (e) => {
    bytes += e.encodedDataLength
    requests++
    const st = started.get(e.requestId)
    if (st) api.push({ path: new URL(st.url).pathname + new URL(st.url).search, ms: (e.timestamp - st.t) * 1000 })
  })
  await page.goto(path, { waitUntil: 'networkidle' })
  if (ready) {
    await page.locator(ready).first().waitFor({ timeout: 30000 })
    await page.waitForLoadState('networkidle')
  }
  await page.close()
  return { bytes, requests, api }
}
