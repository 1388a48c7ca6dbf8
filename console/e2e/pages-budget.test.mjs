// The first-load budget of pages 4–6: at most 1 MB over the wire, API
// answers included, charts loaded in their own chunk. Prints the table.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { open, transferred, skip } from './pages-lib.mjs'

let s
before(async () => {
  if (!skip) s = await open('zh-CN')
})
after(async () => {
  if (s) await s.browser.close()
})

test('first load of segments, tags and analytics is at most 1 MB', { skip }, async () => {
  const rows = []
  const pages = {
    '/segments': '[data-test=overlap] canvas',
    '/tags': '[data-test=schema] .el-table__row',
    '/analytics': '[data-test=analysis-nps] canvas',
  }
  for (const [path, ready] of Object.entries(pages)) {
    const r = await transferred(s.context, path, ready)
    rows.push({ path, ...r })
  }
  console.log('| page | requests | transferred (KB) | budget (KB) |\n|---|---:|---:|---:|')
  for (const r of rows) console.log(`| ${r.path} | ${r.requests} | ${(r.bytes / 1024).toFixed(0)} | 1024 |`)
  for (const r of rows) assert.ok(r.bytes <= 1 << 20, `${r.path}: ${r.bytes} bytes`)
})
