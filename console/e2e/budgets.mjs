// budgets.mjs measures the console's budgets against a running server and
// prints a table (run by BenchmarkConsoleBudgets in e2e/console_test.go):
//   first load of each page ≤ 1 MB transferred (cold cache),
//   each API call behind a page ≤ 300 ms,
//   the 360 page rendered ≤ 1 s after navigation.
// Baselines from the same run: GET /healthz for API time, the sign-in
// page for render time. It exits 1 when a budget is exceeded.
import { open, base, api } from './lib.mjs'

async function measure(path, ready) {
  // Signed in as the console does it (POST /v1/session); null: the
  // console's own default language.
  const { browser, page } = await open(null)
  try {
    const reqs = []
    page.on('requestfinished', (req) => reqs.push(req))
    const t0 = Date.now()
    await page.goto(base + path)
    await page.locator(ready).first().waitFor({ timeout: 15000 })
    const rendered = Date.now() - t0
    await page.waitForLoadState('networkidle')
    let bytes = 0
    let apiMax = 0
    let apiSlowest = ''
    for (const r of reqs) {
      const s = await r.sizes()
      bytes += s.responseBodySize + s.responseHeadersSize
      const p = new URL(r.url()).pathname
      if (p.startsWith('/v1/')) {
        const tm = r.timing()
        const ms = tm.responseEnd - tm.requestStart
        if (ms > apiMax) {
          apiMax = ms
          apiSlowest = p
        }
      }
    }
    // Warm: the same page again, assets cached (as a user moving around).
    const t1 = Date.now()
    await page.reload()
    await page.locator(ready).first().waitFor({ timeout: 15000 })
    const warm = Date.now() - t1
    return { path, bytes, rendered, warm, apiMax, apiSlowest, requests: reqs.length }
  } finally {
    await browser.close()
  }
}

const sample = process.env.PORTRAIT_SAMPLE_EMAIL
const prof = (await api('GET', '/v1/profiles/lookup?type=email&value=' + encodeURIComponent(sample))).body
const pages = [
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
const hz = []
for (let i = 0; i < 5; i++) {
  const t = performance.now()
  await fetch(base + '/healthz')
  hz.push(performance.now() - t)
}
hz.sort((a, b) => a - b)
const baselineAPI = hz[2]

const rows = []
for (const [p, ready] of pages) rows.push(await measure(p, ready))
const signin = rows[0]
const MB = 1 << 20
let failed = false
const pad = (s, n) => String(s).padEnd(n)
const lpad = (s, n) => String(s).padStart(n)
console.log(`\nconsole budgets on ${base} (2-core shared machine: timings are noisy; ratios are to baselines of this run)`)
console.log(`baseline: GET /healthz median ${baselineAPI.toFixed(1)} ms; sign-in page render ${signin.rendered} ms cold\n`)
console.log(pad('page', 34) + lpad('first load KB', 14) + lpad('≤1MB', 6) + lpad('requests', 9) + lpad('render ms', 10) + lpad('warm ms', 9) + lpad('×signin', 8) + lpad('slowest API ms', 15) + '  slowest API call')
for (const r of rows) {
  const okBytes = r.bytes <= MB
  const okAPI = r.apiMax <= 300
  const is360 = r.path.startsWith('/profiles/')
  const okRender = !is360 || r.rendered <= 1000
  if (!okBytes || !okAPI || !okRender) failed = true
  console.log(
    pad(r.path.length > 33 ? r.path.slice(0, 30) + '…' : r.path, 34) +
      lpad((r.bytes / 1024).toFixed(0), 14) +
      lpad(okBytes ? 'ok' : 'OVER', 6) +
      lpad(r.requests, 9) +
      lpad(r.rendered + (is360 ? (okRender ? '' : '!') : ''), 10) +
      lpad(r.warm, 9) +
      lpad((r.rendered / Math.max(1, signin.rendered)).toFixed(2), 8) +
      lpad(r.apiMax.toFixed(1) + (okAPI ? '' : '!'), 15) +
      '  ' + r.apiSlowest,
  )
}
// The calls the pages make that were slow, each timed on its own: the first
// call (cold: caches empty) and the median of five more.
const segList = ((await api('/v1/segments')).body?.segments || []).slice(0, 2).map((x) => x.id)
const calls = [
  '/v1/quality',
  '/v1/analytics/nps?segments=' + segList.join(',') + '&interval=month',
  '/v1/analytics/nps?by=tag&interval=month',
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
console.log('\n' + pad('API call', 60) + lpad('status', 7) + lpad('first ms', 10) + lpad('median ms', 11))
for (const c of calls) {
  const first = await timed(c)
  const more = []
  for (let i = 0; i < 5; i++) more.push((await timed(c)).ms)
  more.sort((a, b) => a - b)
  const ok = first.status === 200 && more[2] <= 300
  if (!ok) failed = true
  console.log(pad(c.length > 59 ? c.slice(0, 56) + '…' : c, 60) + lpad(first.status, 7) + lpad(first.ms.toFixed(1), 10) + lpad(more[2].toFixed(1) + (ok ? '' : '!'), 11))
}
console.log(failed ? '\nBUDGET EXCEEDED' : '\nall budgets met')
process.exit(failed ? 1 : 0)
