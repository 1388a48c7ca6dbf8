import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { open, setLang, shot, axe, keyboard, noBlank, api, skip } from './lib.mjs'

// The customer business map: the grid shows what GET /v1/map answers, in
// both languages; a cell opens on its figures, actions and members, and
// saves as a segment of exactly its members; the map exports to XLSX.
test('map: grid equals the API, drill-down, cell as a segment, export, zh/en', { skip }, async () => {
  const { browser, page, errors } = await open('zh-CN')
  try {
    const want = await api('GET', '/v1/map?lang=zh')
    assert.equal(want.status, 200, `GET /v1/map: ${JSON.stringify(want.body)}`)
    assert.deepEqual(want.body.stages, ['consult', 'purchase', 'after_sales'])
    assert.ok(want.body.rows.length > 0, 'the demo has saved segments: the map has rows')
    // the demo's journeys reach every stage, and its complaints make pain points
    const cells = want.body.rows.flatMap((r) => r.cells)
    for (const st of want.body.stages) assert.ok(cells.some((c) => c.stage === st && c.customers > 0), `no one reached ${st}`)
    assert.ok(cells.some((c) => c.stage === 'after_sales' && c.pain_points.length > 0), 'after-sales cells have pain points')
    assert.ok(cells.some((c) => c.needs.length > 0), 'cells have needs')

    await page.goto('/map')
    await page.locator('[data-test=grid]').waitFor()
    await page.getByRole('heading', { name: '客户经营地图' }).waitFor()
    for (const row of want.body.rows) {
      for (const c of row.cells) {
        const el = page.locator(`[data-cell="${row.segment}:${c.stage}"]`)
        assert.equal(Number(await el.getAttribute('data-customers')), c.customers, `${row.name} · ${c.stage}`)
      }
    }
    // colour scale: a fuller cell is more saturated than an emptier one
    const alpha = async (sel) => Number((await page.locator(sel).locator('xpath=..').evaluate((td) => getComputedStyle(td).backgroundColor)).match(/[\d.]+\)$/)?.[0].replace(')', '') ?? 1)
    const sorted = [...want.body.rows.flatMap((r) => r.cells.map((c) => ({ sel: `[data-cell="${r.segment}:${c.stage}"]`, share: c.share })))].sort((a, b) => a.share - b.share)
    if (sorted[0].share < sorted[sorted.length - 1].share) {
      assert.ok((await alpha(sorted[0].sel)) < (await alpha(sorted[sorted.length - 1].sel)), 'colour follows share')
    }
    await noBlank(page, errors, 'map')
    await axe(page, 'map')
    await keyboard(page, 'map')
    await shot(page, 'map')

    // drill down into the fullest after-sales cell
    const row = want.body.rows.find((r) => r.cells[2].customers > 0)
    const cell = row.cells[2]
    await page.locator(`[data-cell="${row.segment}:after_sales"]`).click()
    await page.locator('[data-test=members]').waitFor()
    assert.equal((await page.locator('[data-fig=customers]').innerText()).replace(/[^\d]/g, ''), String(cell.customers))
    const members = await api('GET', `/v1/map/members?segment=${row.segment}&stage=after_sales&limit=20`)
    for (const id of members.body.profiles.slice(0, 3)) await page.getByRole('link', { name: id }).waitFor()
    for (const a of cell.actions) await page.locator(`[data-rule="${a.rule}"]`).waitFor()
    await axe(page, 'map drill-down')
    await shot(page, 'map-cell')
    await page.locator('[data-test=save-cell]').click()
    await page.locator('[data-test=saved] a').waitFor()
    const href = await page.locator('[data-test=saved] a').getAttribute('href')
    const saved = await api('GET', '/v1/segments/' + href.split('/').pop())
    assert.equal(saved.status, 200)
    assert.equal(saved.body.size, cell.customers, 'the saved cell has exactly its members')
    await page.keyboard.press('Escape')

    // export
    const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('[data-test=export]').click()])
    const bytes = readFileSync(await dl.path())
    assert.equal(bytes.subarray(0, 2).toString(), 'PK', 'an XLSX (zip) file')

    // English
    await setLang(page, 'en')
    await page.getByRole('heading', { name: 'Customer business map' }).waitFor()
    await page.locator('[data-test=grid] th[data-stage=consult]', { hasText: 'Consult' }).waitFor()
    await noBlank(page, errors, 'map en')
  } finally {
    await browser.close()
  }
})
