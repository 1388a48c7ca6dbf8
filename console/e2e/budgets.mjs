// budgets.mjs measures the console's budgets against a running server and
// prints tables (run by BenchmarkConsoleBudgets in e2e/console_test.go):
//   first load of each page ≤ 1 MB transferred (cold cache),
//   each API call behind a page ≤ 300 ms,
//   the 360 page rendered ≤ 1 s after navigation.
// Each page is loaded PORTRAIT_BUDGET_RUNS times (default 5), each time in
// a newly launched browser (cold HTTP cache, no code cache, a new
// renderer); figures are medians over the runs. Baselines from the same
// run: GET /healthz for API time, the sign-in page for render time.
//
// "Rendered ≤ 1 s after navigation" is measured as the words say: from the
// navigation's start (performance.timeOrigin, the navigation entry's
// startTime 0) to the moment the first trait row of the 360 page was
// PAINTED, as the browser reports it through the Element Timing API (the
// page marks the first row's cells with elementtiming="360-first-trait";
// a PerformanceObserver of type 'element' gives their renderTime). A page
// without the attribute (an older build) gets it from the harness when
// the row enters the DOM, before its first paint; when no element entry
// comes at all, the figure falls back to a double requestAnimationFrame
// after the row entered the DOM (a MutationObserver), and the table says
// so (source column). The figure earlier sessions printed as "rendered"
// (from the harness's goto() call, which includes the new browser's delay
// before the navigation starts, to Playwright's locator.waitFor noticing
// the row, which polls at 0, 20, 50, 100, 100, then every 500 ms) stays
// printed beside it as "from goto (polled)": it is not the budget's
// figure any more, and nothing is hidden.
//
// Markdown tables (for docs/console-api.md) follow the plain ones, and a
// breakdown of each cold load (first API request, last API answer, in
// the DOM and painted in the page's clock, main-thread CPU). It exits 1
// when a budget is exceeded. PORTRAIT_BUDGET_JSON=file writes the rows
// (with every run's figures) as JSON, for before/after comparisons.
import { writeFileSync } from 'node:fs'
import { open, base, api, token } from './lib.mjs'

const runs = Math.max(1, Number(process.env.PORTRAIT_BUDGET_RUNS || 5))
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.floor((s.length - 1) / 2)] : 0
}
// A call's route: ids and query values left out, so that runs group.
const route = (p) =>
  p
    .replace(/\/profiles\/p_[^/]+/, '/profiles/{id}')
    .replace(/\/segments\/(?!preview|overlap)[^/]+/, '/segments/{id}')
    .replace(/\/analytics\/runs\/[^/]+/, '/analytics/runs/{id}')

async function measure(path, ready) {
  // Signed in as the console does it (POST /v1/session); null: the
  // console's own default language.
  const { browser, context, page } = await open(null)
  try {
    const reqs = []
    page.on('requestfinished', (req) => reqs.push(req))
    // In the page's own clock (ms from navigation start): when the ready
    // element entered the DOM (a MutationObserver, not subject to the
    // harness's polling), when it was painted (Element Timing; see the
    // top of this file), and a double animation frame after it entered
    // the DOM (the fallback when no element entry comes).
    await page.addInitScript((sel) => {
      window.__painted = []
      try {
        new PerformanceObserver((list) => {
          for (const e of list.getEntries()) window.__painted.push({ id: e.identifier, at: e.renderTime || e.loadTime })
        }).observe({ type: 'element', buffered: true })
      } catch {
        // no Element Timing in this browser: the fallback below
      }
      const mo = new MutationObserver(() => {
        const el = document.querySelector(sel)
        if (!el) return
        window.__ready = performance.now()
        mo.disconnect()
        // Text is reported for the block that holds it (a table cell, not
        // the row): the ready element and, for a row, its first two cells.
        if (!el.closest('[elementtiming]') && !el.querySelector('[elementtiming]')) {
          window.__harnessMarked = true
          const cells = el.tagName === 'TR' ? [...el.children].slice(0, 2) : [el]
          for (const c of cells) c.setAttribute('elementtiming', 'harness')
        }
        requestAnimationFrame(() => requestAnimationFrame(() => (window.__raf2 = performance.now())))
      })
      mo.observe(document, { childList: true, subtree: true })
    }, ready)
    const cdp = await context.newCDPSession(page)
    await cdp.send('Performance.enable')
    const t0 = Date.now()
    await page.goto(base + path)
    // fromGoto: as measured before the budget's figure was the paint
    // (Playwright's locator.waitFor, which polls at 0, 20, 50, 100, 100,
    // then every 500 ms, timed from goto); seen: the same element checked
    // at every animation frame, from goto. Then the paint (or the
    // fallback) is waited for: the CPU figure below is up to it.
    let fromGoto = 0
    let seen = 0
    await Promise.all([
      page.locator(ready).first().waitFor({ timeout: 60000 }).then(() => (fromGoto = Date.now() - t0)),
      page.waitForFunction((sel) => !!document.querySelector(sel), ready, { polling: 'raf', timeout: 60000 }).then(() => (seen = Date.now() - t0)),
    ])
    await page.waitForFunction(() => window.__painted.length > 0 || window.__raf2 > 0, null, { polling: 'raf', timeout: 60000 })
    // An element entry may come a frame after the double rAF: wait for it
    // a little before falling back.
    await page.waitForFunction(() => window.__painted.length > 0, null, { polling: 'raf', timeout: 500 }).catch(() => {})
    // The renderer's main-thread CPU up to that moment (its process is
    // new: the browser is): a figure the shared machine's load moves less.
    const metrics = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]))
    const inPage = await page.evaluate((t0) => {
      const before = performance.getEntriesByType('resource').filter((e) => e.startTime < window.__ready)
      const api = before.filter((e) => new URL(e.name).pathname.startsWith('/v1/'))
      const own = window.__painted.filter((e) => e.id !== 'harness' && e.at > 0)
      const any = window.__painted.filter((e) => e.at > 0)
      const els = own.length ? own : any
      return {
        ready: window.__ready,
        painted: els.length ? Math.min(...els.map((e) => e.at)) : window.__raf2 || 0,
        // where the painted figure came from: the page's own elementtiming
        // attribute, the harness's, or the double-rAF fallback
        source: own.length ? 'element' : any.length ? 'element (harness attr)' : 'raf×2',
        firstAPI: api.length ? Math.min(...api.map((e) => e.startTime)) : 0,
        lastAPI: api.length ? Math.max(...api.map((e) => e.responseEnd)) : 0,
        lastScript: Math.max(0, ...before.filter((e) => e.initiatorType === 'script' || e.name.endsWith('.js')).map((e) => e.responseEnd)),
        fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime || 0,
        load: performance.getEntriesByType('navigation')[0]?.loadEventEnd || 0,
        // the navigation's start after goto was called (a new browser
        // starts its renderer): wall clocks of one machine
        nav: performance.timeOrigin - t0,
        before: before.length,
      }
    }, t0)
    await page.waitForLoadState('networkidle')
    let bytes = 0
    const calls = []
    for (const r of reqs) {
      const s = await r.sizes()
      bytes += s.responseBodySize + s.responseHeadersSize
      const p = new URL(r.url()).pathname
      if (p.startsWith('/v1/')) {
        const tm = r.timing()
        calls.push({ route: route(p), ms: tm.responseEnd - tm.requestStart })
      }
    }
    // Warm: the same page again, assets cached (as a user moving around).
    const t1 = Date.now()
    await page.reload()
    await page.locator(ready).first().waitFor({ timeout: 60000 })
    const warm = Date.now() - t1
    return { bytes, fromGoto, seen, warm, calls, requests: reqs.length, cpu: metrics.ThreadTime * 1000, ...inPage }
  } finally {
    await browser.close()
  }
}

const sample = process.env.PORTRAIT_SAMPLE_EMAIL
const prof = (await api('GET', '/v1/profiles/lookup?type=email&value=' + encodeURIComponent(sample))).body
const allPages = [
  ['/signin', '#token'],
  ['/', 'h1'],
  ['/search', '#q'],
  ['/profiles', 'h1'],
  ['/profiles/' + prof.id, '[data-test=traits] [data-trait]'],
  ['/segments', 'h1'],
  ['/tags', 'h1'],
  ['/analytics', 'h1'],
  ['/data', '[data-test=quality] .pt-stat'],
]
// PORTRAIT_BUDGET_PAGES=/signin,/,360 measures only those pages (360: the
// profile page), for a quicker before/after comparison; sign-in stays
// first, as the baseline of the ratio column.
const only = (process.env.PORTRAIT_BUDGET_PAGES || '').split(',').filter(Boolean)
const pages = only.length ? allPages.filter(([p]) => only.includes(p) || (only.includes('360') && p.startsWith('/profiles/p_'))) : allPages
const hz = []
for (let i = 0; i < 5; i++) {
  const t = performance.now()
  await fetch(base + '/healthz')
  hz.push(performance.now() - t)
}
const baselineAPI = median(hz)

// Pages in turn, runs times over: each round loads every page once, so a
// slow moment of the shared machine spreads over pages rather than
// landing on one.
const samples = pages.map(() => [])
for (let run = 0; run < runs; run++) {
  for (const [i, [p, ready]] of pages.entries()) samples[i].push(await measure(p, ready))
}
const rows = pages.map(([path], i) => {
  const ss = samples[i]
  const byRoute = new Map()
  for (const s of ss) {
    // the slowest call of each route in this run, then the median over runs
    const worst = new Map()
    for (const c of s.calls) worst.set(c.route, Math.max(worst.get(c.route) || 0, c.ms))
    for (const [r, ms] of worst) byRoute.set(r, (byRoute.get(r) || []).concat(ms))
  }
  const calls = [...byRoute].map(([r, ms]) => ({ route: r, median: median(ms), max: Math.max(...ms), runs: ms.length })).sort((a, b) => b.median - a.median)
  return {
    path,
    bytes: median(ss.map((s) => s.bytes)),
    // the budget's figure: navigation start → painted (page's clock)
    painted: median(ss.map((s) => s.painted)),
    paintedMax: Math.max(...ss.map((s) => s.painted)),
    source: [...new Set(ss.map((s) => s.source))].join('+'),
    fromGoto: median(ss.map((s) => s.fromGoto)),
    fromGotoMax: Math.max(...ss.map((s) => s.fromGoto)),
    warm: median(ss.map((s) => s.warm)),
    requests: median(ss.map((s) => s.requests)),
    calls,
    seen: median(ss.map((s) => s.seen)),
    ready: median(ss.map((s) => s.ready)),
    firstAPI: median(ss.map((s) => s.firstAPI)),
    lastAPI: median(ss.map((s) => s.lastAPI)),
    lastScript: median(ss.map((s) => s.lastScript)),
    fcp: median(ss.map((s) => s.fcp)),
    load: median(ss.map((s) => s.load)),
    nav: median(ss.map((s) => s.nav)),
    cpu: median(ss.map((s) => s.cpu)),
    before: median(ss.map((s) => s.before)),
    apiMax: calls.length ? calls[0].median : 0,
    apiSlowest: calls.length ? calls[0].route : '',
  }
})
const signin = rows[0]
const MB = 1 << 20
let failed = false
const pad = (s, n) => String(s).padEnd(n)
const lpad = (s, n) => String(s).padStart(n)
const short = (p) => (p.startsWith('/profiles/p_') ? '/profiles/{id} (360)' : p)
const ms = (x) => Math.round(x)
console.log(`\nconsole budgets on ${base}, median of ${runs} runs, each in a newly launched browser (2-core shared machine: timings are noisy; ratios are to baselines of this run)`)
console.log(`baseline: GET /healthz median ${baselineAPI.toFixed(1)} ms; sign-in page painted ${ms(signin.painted)} ms after navigation start, cold\n`)
console.log('painted: navigation start → the ready element painted (Element Timing), the budget\'s figure; from goto (polled): the harness\'s goto() call → Playwright\'s locator.waitFor saw it (the figure printed before, not the budget)')
console.log(pad('page', 22) + lpad('first load KB', 14) + lpad('≤1MB', 6) + lpad('requests', 9) + lpad('painted ms', 11) + lpad('max', 7) + lpad('×signin', 8) + lpad('from goto (polled)', 19) + lpad('warm ms', 9) + lpad('slowest API ms', 15) + '  slowest API call')
for (const r of rows) {
  const okBytes = r.bytes <= MB
  const okAPI = r.apiMax <= 300
  const is360 = r.path.startsWith('/profiles/p_')
  const okRender = !is360 || (r.painted > 0 && r.painted <= 1000)
  r.ok = okBytes && okAPI && okRender
  if (!r.ok) failed = true
  console.log(
    pad(short(r.path), 22) +
      lpad((r.bytes / 1024).toFixed(0), 14) +
      lpad(okBytes ? 'ok' : 'OVER', 6) +
      lpad(r.requests, 9) +
      lpad(ms(r.painted) + (is360 ? (okRender ? '' : '!') : ''), 11) +
      lpad(ms(r.paintedMax), 7) +
      lpad((r.painted / Math.max(1, signin.painted)).toFixed(2), 8) +
      lpad(r.fromGoto, 19) +
      lpad(r.warm, 9) +
      lpad(r.apiMax.toFixed(1) + (okAPI ? '' : '!'), 15) +
      '  ' + r.apiSlowest,
  )
}

// Where a cold load's time goes (medians over runs): the navigation's
// start after goto (nav); in the page's clock from navigation start, the
// first API request sent, the last API answer and the last script chunk
// received before the ready element was in the DOM, first contentful
// paint, the ready element in the DOM (ready), painted (the budget's
// figure) and how (source), the load event; from goto, the element seen
// at an animation frame (seen) and by locator.waitFor (from goto, polled);
// the renderer's main-thread CPU up to the paint.
console.log('\ncold load breakdown (ms; nav, seen, from goto: from the harness\'s goto(); the others: from navigation start)')
console.log(pad('page', 22) + lpad('nav', 6) + lpad('1st API', 9) + lpad('last API', 9) + lpad('last js', 9) + lpad('FCP', 7) + lpad('ready', 7) + lpad('painted', 9) + lpad('load', 7) + lpad('seen', 7) + lpad('from goto', 10) + lpad('main CPU', 9) + lpad('reqs', 6) + '  painted from')
for (const r of rows)
  console.log(pad(short(r.path), 22) + lpad(r.nav.toFixed(0), 6) + lpad(r.firstAPI.toFixed(0), 9) + lpad(r.lastAPI.toFixed(0), 9) + lpad(r.lastScript.toFixed(0), 9) + lpad(r.fcp.toFixed(0), 7) + lpad(r.ready.toFixed(0), 7) + lpad(r.painted.toFixed(0), 9) + lpad(r.load.toFixed(0), 7) + lpad(r.seen, 7) + lpad(r.fromGoto, 10) + lpad(r.cpu.toFixed(0), 9) + lpad(r.before, 6) + '  ' + r.source)

// Every API call behind each page: the median over runs of its slowest
// call in a run (a page may call a route more than once).
console.log('\n' + pad('page', 22) + pad('API call', 44) + lpad('median ms', 10) + lpad('max ms', 8) + lpad('runs', 6))
for (const r of rows) for (const c of r.calls) console.log(pad(short(r.path), 22) + pad(c.route, 44) + lpad(c.median.toFixed(1) + (c.median <= 300 ? '' : '!'), 10) + lpad(c.max.toFixed(1), 8) + lpad(c.runs, 6))

// The calls that were slow in earlier sessions, each timed on its own: the
// first call (cold: caches as the pages left them) and the median of five
// more.
const segList = ((await api('GET', '/v1/segments')).body?.segments || []).slice(0, 2).map((x) => x.id)
const calls = [
  '/v1/overview',
  '/v1/quality',
  '/v1/lifecycle/distribution?interval=week',
  '/v1/lifecycle/distribution?interval=month',
  '/v1/lifecycle/flows',
  '/v1/analytics/nps?segments=' + segList.join(',') + '&interval=month',
  '/v1/analytics/nps?by=tag&interval=month',
  '/v1/profiles/' + prof.id + '/view',
  '/v1/profiles/' + prof.id + '/events?limit=50',
  '/v1/profiles/' + prof.id,
  '/v1/breakdown?by=tag&top=1000',
]
async function timed(p) {
  const t = performance.now()
  const r = await fetch(base + p, { headers: { Authorization: 'Bearer ' + token } })
  await r.arrayBuffer()
  return { ms: performance.now() - t, status: r.status }
}
const alone = []
console.log('\n' + pad('API call on its own', 60) + lpad('status', 7) + lpad('first ms', 10) + lpad('median ms', 11))
for (const c of calls) {
  const first = await timed(c)
  const more = []
  for (let i = 0; i < 5; i++) more.push((await timed(c)).ms)
  const ok = first.status === 200 && median(more) <= 300
  if (!ok) failed = true
  alone.push({ call: route(c.split('?')[0]) + (c.includes('?') ? '?' + c.split('?')[1].replace(/segments=[^&]*/, 'segments=…') : ''), status: first.status, first: first.ms, median: median(more), ok })
  console.log(pad(c.length > 59 ? c.slice(0, 56) + '…' : c, 60) + lpad(first.status, 7) + lpad(first.ms.toFixed(1), 10) + lpad(median(more).toFixed(1) + (ok ? '' : '!'), 11))
}

// The same as markdown, for docs/console-api.md.
console.log(`\n| page | first load (KB) | requests | painted ms after navigation start (median) | (max) | from goto, polled (median) | slowest API call | its ms (median) | budgets |\n|---|---:|---:|---:|---:|---:|---|---:|---|`)
for (const r of rows) console.log(`| ${short(r.path)} | ${(r.bytes / 1024).toFixed(0)} | ${r.requests} | ${ms(r.painted)} | ${ms(r.paintedMax)} | ${r.fromGoto} | \`${r.apiSlowest || '—'}\` | ${r.apiMax.toFixed(0)} | ${r.ok ? 'met' : 'EXCEEDED'} |`)
console.log(`\n| page (cold) | nav start | first API request | last API answer | last script | FCP | in the DOM | painted | load event | seen (raf, from goto) | from goto (polled) | main-thread CPU | requests before ready | painted from |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|`)
for (const r of rows) console.log(`| ${short(r.path)} | ${r.nav.toFixed(0)} | ${r.firstAPI.toFixed(0)} | ${r.lastAPI.toFixed(0)} | ${r.lastScript.toFixed(0)} | ${r.fcp.toFixed(0)} | ${r.ready.toFixed(0)} | ${r.painted.toFixed(0)} | ${r.load.toFixed(0)} | ${r.seen} | ${r.fromGoto} | ${r.cpu.toFixed(0)} | ${r.before} | ${r.source} |`)
console.log(`\n| API call on its own | status | first ms | median ms |\n|---|---:|---:|---:|`)
for (const a of alone) console.log(`| \`${a.call}\` | ${a.status} | ${a.first.toFixed(1)} | ${a.median.toFixed(1)}${a.ok ? '' : ' (over)'} |`)

if (process.env.PORTRAIT_BUDGET_JSON) writeFileSync(process.env.PORTRAIT_BUDGET_JSON, JSON.stringify({ base, runs, rows: rows.map((r, i) => ({ ...r, samples: samples[i].map(({ calls, ...x }) => x) })) }, null, 1))
console.log(failed ? '\nBUDGET EXCEEDED' : '\nall budgets met')
process.exit(failed ? 1 : 0)
