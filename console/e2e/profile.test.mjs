import { test } from 'node:test'
import assert from 'node:assert/strict'
import { launch, signIn, shot, axe, keyboard, noBlank, api, base, skip } from './lib.mjs'

const money = (v) => '¥' + Number(v).toLocaleString('en-US', { maximumFractionDigits: 2 })
const pct = (v) => (Number(v) * 100).toLocaleString('en-US', { maximumFractionDigits: 1 }) + '%'

test('profile 360: values on the page equal the API', { skip }, async () => {
  const email = process.env.PORTRAIT_SAMPLE_EMAIL
  const p = (await api('GET', '/v1/profiles/lookup?type=email&value=' + encodeURIComponent(email))).body
  assert.ok(p?.id, 'sample profile not found')
  const { browser, page, errors } = await launch()
  try {
    await signIn(page, '/profiles/' + p.id)
    await page.locator('[data-test=name]').waitFor()
    assert.equal(await page.locator('[data-test=name]').innerText(), p.traits.name.value)
    assert.equal(await page.locator('[data-test=profile-id]').innerText(), p.id)
    if (p.traits.revenue) assert.equal(await page.locator('[data-test=revenue]').innerText(), money(p.traits.revenue.value))
    assert.equal((await page.locator('[data-test=event-count]').innerText()).replace(/[^\d]/g, ''), String(p.event_count))
    // Every identifier is on the identity card.
    const card = await page.locator('[data-test=identifiers]').innerText()
    for (const i of p.identifiers) assert.ok(card.includes(i.value), `identifier ${i.type} ${i.value} missing`)
    if (p.traits.clv_12m) assert.equal(await page.locator('[data-test=clv]').innerText(), money(p.traits.clv_12m.value))
    if (p.traits.churn_probability) assert.equal(await page.locator('[data-test=churn]').innerText(), pct(p.traits.churn_probability.value))
    // Tags: each of the profile's tags is in the cloud.
    for (const tg of p.tags || []) await page.locator(`[data-tag="${tg.name}"]`).waitFor()
    // Hovering a value shows where it came from.
    const row = page.locator('[data-trait=name] .tv')
    await row.hover()
    await page.getByText(new RegExp('Source: ' + p.traits.name.source + ' .*message: ' + p.traits.name.message_id)).waitFor()
    // The event timeline shows events from /v1/profiles/{id}/events.
    const ev = await api('GET', '/v1/profiles/' + p.id + '/events?limit=50')
    await page.locator('[data-test=events] .el-table__row').first().waitFor()
    assert.equal(await page.locator('[data-test=events] .el-table__row').count(), ev.body.events.length)
    // Explain-why for a segment the customer is in.
    const segs = (await api('GET', '/v1/segments')).body.segments
    for (const s of segs) {
      const ex = await api('GET', `/v1/segments/${s.id}/explain/${p.id}`)
      if (ex.body.member) {
        await page.locator('[data-test=segments]').getByText(s.name).click()
        await page.locator('[data-test=segments] code', { hasText: ex.body.explanation.clause }).first().waitFor()
        break
      }
    }
    await noBlank(page, errors, 'profile')
    await axe(page, 'profile')
    await keyboard(page, 'profile')
    await shot(page, 'profile')
  } finally {
    await browser.close()
  }
})

test('profile 360: an unknown id shows the API message, not a blank page', { skip }, async () => {
  const { browser, page } = await launch()
  try {
    await signIn(page, '/profiles/p_doesnotexist')
    await page.getByRole('alert').waitFor()
    const text = await page.getByRole('alert').innerText()
    assert.match(text, /not_found/)
    assert.equal(page.url(), base + '/profiles/p_doesnotexist')
  } finally {
    await browser.close()
  }
})
