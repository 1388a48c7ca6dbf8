import { test } from 'node:test'
import assert from 'node:assert/strict'
import { launch, signIn, shot, checkA11y, checkKeyboard, noBlank, api, base } from './lib.mjs'

const money = (v) => '¥' + Number(v).toLocaleString('en-US', { maximumFractionDigits: 2 })
const pct = (v) => (Number(v) * 100).toLocaleString('en-US', { maximumFractionDigits: 1 }) + '%'

test('profile 360: values on the page equal the API', async () => {
  const email = process.env.PORTRAIT_SAMPLE_EMAIL
  const p = (await api('/v1/profiles/lookup?type=email&value=' + encodeURIComponent(email))).body
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
    const ev = await api('/v1/profiles/' + p.id + '/events?limit=50')
    await page.locator('[data-test=events] .el-table__row').first().waitFor()
    assert.equal(await page.locator('[data-test=events] .el-table__row').count(), ev.body.events.length)
    // Explain-why for a segment the customer is in.
    const segs = (await api('/v1/segments')).body.segments
    for (const s of segs) {
      const ex = await api(`/v1/segments/${s.id}/explain/${p.id}`)
      if (ex.body.member) {
        await page.locator('[data-test=segments]').getByText(s.name).click()
        await page.locator('[data-test=segments] code', { hasText: ex.body.explanation.clause }).first().waitFor()
        break
      }
    }
    await noBlank(page, errors, 'profile')
    await checkA11y(page, 'profile')
    await checkKeyboard(page, 'profile')
    await shot(page, 'profile')
  } finally {
    await browser.close()
  }
})

test('profile 360: an unknown id shows the API message, not a blank page', async () => {
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

// A customer whose mobile number is one digit short, sent through the
// tracking API: the number is refused, and the refusal is listed on the
// customer's page with the raw value and the message it came in.
test('profile 360: a cleaning issue and the server-side event filter', async () => {
  const stamp = Date.now()
  const uid = `e2e-issue-${stamp}`
  const up = await fetch(base + '/v1/identify', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Basic ' + Buffer.from(process.env.PORTRAIT_WRITE_KEY + ':').toString('base64') },
    body: JSON.stringify({ userId: uid, messageId: `m-${uid}`, traits: { name: '赵敏', phone: '1380013800' } }),
  })
  assert.equal(up.status, 200, await up.text())
  let p
  for (let i = 0; i < 300 && !p; i++) {
    const r = await api('/v1/profiles/lookup?type=user_id&value=' + uid)
    if (r.status === 200) p = r.body
    else await new Promise((res) => setTimeout(res, 100))
  }
  assert.ok(p, 'imported customer not found')
  assert.equal(p.traits.phone, undefined, 'the short number must not be set')
  const issues = (await api(`/v1/profiles/${p.id}/issues`)).body.issues
  assert.equal(issues.length, 1)
  const { browser, page, errors } = await launch()
  try {
    await signIn(page, '/profiles/' + p.id)
    const row = page.locator('[data-test=issues] .el-table__row', { hasText: '1380013800' })
    await row.waitFor()
    const text = await row.innerText()
    assert.ok(text.includes('phone') && text.includes(issues[0].source) && text.includes(issues[0].message_id), text)
    await noBlank(page, errors, 'profile-issue')
  } finally {
    await browser.close()
  }

  // The sample customer's timeline, filtered to track events by the server.
  const email = process.env.PORTRAIT_SAMPLE_EMAIL
  const s = (await api('/v1/profiles/lookup?type=email&value=' + encodeURIComponent(email))).body
  const tracks = (await api(`/v1/profiles/${s.id}/events?limit=50&type=track`)).body.events
  const b2 = await launch()
  try {
    await signIn(b2.page, '/profiles/' + s.id)
    await b2.page.locator('[data-test=events] .el-table__row').first().waitFor()
    await b2.page.locator('[data-test=type-filter]').click()
    await b2.page.locator('.el-select-dropdown__item:visible', { hasText: /^track$/ }).click()
    await b2.page.waitForFunction(
      (n) => {
        const rows = [...document.querySelectorAll('[data-test=events] .el-table__body-wrapper .el-table__row')]
        return rows.length === n && rows.every((r) => r.children[1].textContent.trim() === 'track')
      },
      tracks.length,
      { timeout: 10000 },
    )
  } finally {
    await b2.browser.close()
  }
})
