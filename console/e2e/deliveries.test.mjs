// A segment delivery's recorded clearance on the segment's page (issue 14
// in the console): a delivery created by a marketing key of internal
// clearance shows who created it, the role and the clearance every run is
// masked to, and its run with the identifiers masked, as the API records
// them. Both languages; axe.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { open, api, axe, shot, skip, base, setLang } from './lib.mjs'

let s
before(async () => {
  if (!skip) s = await open('zh-CN')
})
after(async () => {
  if (s) await s.browser.close()
})

async function as(secret, method, p, body) {
  const r = await fetch(base + p, {
    method,
    headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await r.text()
  return { status: r.status, body: text ? JSON.parse(text) : null }
}

test('segments: a delivery shows its recorded clearance and masked runs', { skip }, async () => {
  const { page, errors } = s
  const segs = (await api('GET', '/v1/segments')).body.segments
  const seg = segs.find((x) => x.size > 0) || segs[0]
  const key = await api('POST', '/v1/keys', { name: 'e2e-delivery-marketing', role: 'marketing', clearance: 'internal' })
  assert.equal(key.status, 201, JSON.stringify(key.body))
  try {
    const d = await as(key.body.secret, 'POST', '/v1/segment-deliveries', {
      segment_id: seg.id, identifiers: ['phone', 'email'], hash: true, target: { kind: 'file', name: 'e2e-clearance' }, every: '24h',
    })
    assert.equal(d.status, 201, JSON.stringify(d.body))
    assert.equal(d.body.clearance, 'internal')
    const run = await as(key.body.secret, 'POST', `/v1/segment-deliveries/${d.body.id}/run`)
    assert.ok(run.status < 300, JSON.stringify(run.body))
    const runs = (await api('GET', `/v1/segment-deliveries/${d.body.id}/runs`)).body.runs
    assert.ok(runs.length > 0 && (runs[0].masked || []).length > 0, `an internal run masks phone and e-mail: ${JSON.stringify(runs)}`)

    await page.goto(`/segments/${seg.id}`)
    const card = page.locator(`[data-test=deliveries] [data-delivery="${d.body.id}"]`)
    await card.waitFor({ timeout: 90000 }) // after the segment list, its detail, then the deliveries and their runs
    assert.equal(await card.locator('[data-test=clearance]').getAttribute('data-level'), 'internal')
    assert.equal((await card.locator('[data-test=clearance]').textContent()).trim(), '内部')
    assert.equal((await card.locator('[data-test=created-by]').textContent()).trim(), 'e2e-delivery-marketing')
    assert.equal(await card.locator('[data-test=role]').getAttribute('data-role'), 'marketing')
    assert.equal((await card.locator('[data-test=role]').textContent()).trim(), '市场', 'the role in words (common.roles), not the API\'s name')
    const masked = card.locator(`[data-run="${runs[0].id}"] [data-test=masked]`)
    assert.equal((await masked.textContent()).trim(), runs[0].masked.join(', '))
    await axe(page, 'segment deliveries')
    await shot(page, 'segment-delivery')

    await setLang(page, 'en')
    await card.locator('[data-test=clearance]').getByText('Internal', { exact: true }).waitFor()
    await page.getByText('Recorded clearance').first().waitFor()
    await as(key.body.secret, 'DELETE', `/v1/segment-deliveries/${d.body.id}`)
  } finally {
    await api('DELETE', '/v1/keys/' + key.body.key.id)
  }
  assert.deepEqual(errors, [])
})
