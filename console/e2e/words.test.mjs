// No raw English, JSON or enum values in the Chinese console (issue 13):
// the API's sentences with a code (a merge's reason_code, an account's
// gap_codes and ICP reason codes, a customer's cluster_terms) and the
// 360 page's enum values are shown in Chinese words.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { open, api, skip } from './lib.mjs'

const han = /[\u4e00-\u9fff]/
let s
before(async () => {
  if (!skip) s = await open('zh-CN')
})
after(async () => {
  if (s) await s.browser.close()
})

test('words: the overview says a merge reason in Chinese', { skip }, async () => {
  const { page } = s
  const ov = await api('GET', '/v1/overview')
  const m = (ov.body.recent_merges || []).find((x) => x.reason_code)
  assert.ok(m, `the demo has a recent merge with a reason code: ${JSON.stringify(ov.body.recent_merges)}`)
  await page.goto('/')
  const cell = page.locator(`[data-reason-code="${m.reason_code}"]`).first()
  await cell.waitFor()
  const text = await cell.innerText()
  assert.match(text, han, `reason in Chinese: ${text}`)
  assert.ok(!text.includes(m.reason), `not the API's English: ${text}`)
})

test('words: ICP reasons, coverage gaps and flags in Chinese', { skip }, async () => {
  const { page } = s
  const list = await api('GET', '/v1/accounts?sort=icp_score&limit=100')
  const withGap = list.body.accounts.find((a) => a.gap_codes?.length)
  assert.ok(withGap, 'the demo has an account with a coverage gap')
  const top = list.body.accounts[0]
  assert.ok(top.icp_reasons.every((r) => r.code), `every ICP reason has a code: ${JSON.stringify(top.icp_reasons)}`)
  await page.goto('/accounts')
  const table = page.locator('[data-test=ranking]')
  await table.locator(`a[data-account="${top.id}"]`).waitFor()
  await table.locator('.el-table__expand-icon').first().click()
  const reasons = page.locator(`ul.reasons[data-account="${top.id}"] li`)
  await reasons.first().waitFor()
  const texts = await reasons.allInnerTexts()
  assert.equal(texts.length, top.icp_reasons.length)
  texts.forEach((x, i) => {
    assert.match(x, han, `reason ${i} in Chinese: ${x}`)
    assert.ok(!x.includes(top.icp_reasons[i].text), `reason ${i} is not the API's English: ${x}`)
  })

  await page.goto('/accounts/' + withGap.id)
  const gap = page.locator('[data-test=gaps] li[data-gap-code]').first()
  await gap.waitFor()
  const g = await gap.innerText()
  assert.match(g, han, `gap in Chinese: ${g}`)
  assert.ok(!/identified|presumed|no contact/.test(g), `gap not in English: ${g}`)

  // A flagged account (垃圾客户): its flag's reasons.
  const flagged = list.body.accounts.find((a) => a.flag?.codes?.length)
  assert.ok(flagged, 'the demo has a flagged account')
  await page.goto('/accounts/' + flagged.id)
  const fl = page.locator('li[data-flag-code]').first()
  await fl.waitFor()
  const f = await fl.innerText()
  assert.match(f, han, `flag reason in Chinese: ${f}`)
  assert.ok(!f.includes(flagged.flag.reasons[0]), `flag reason not the API's English: ${f}`)
})

test('words: the 360 page shows enum values, trait names and events in Chinese, no JSON', { skip }, async () => {
  const { page } = s
  const email = process.env.PORTRAIT_SAMPLE_EMAIL
  const p = (await api('GET', '/v1/profiles/lookup?type=email&value=' + encodeURIComponent(email))).body
  // A customer of a cluster (the demo's k-means run wrote cluster_terms).
  let pid = p.traits.cluster_terms ? p.id : null
  for (const x of pid ? [] : (await api('GET', '/v1/profiles?limit=30')).body.profiles || []) {
    if ((await api('GET', '/v1/profiles/' + x.profile_id)).body.traits?.cluster_terms) {
      pid = x.profile_id
      break
    }
  }
  await page.goto('/profiles/' + p.id)
  await page.locator('[data-test=traits] [data-trait]').first().waitFor()
  // Trait names: the first row's label is the schema's Chinese label.
  const th = await page.locator('[data-test=traits] [data-trait=name] th').innerText()
  assert.match(th, /姓名/)
  // Identifier types on the identity card.
  const card = await page.locator('[data-test=identifiers]').innerText()
  assert.ok(!/\b(email|phone|user_id|anonymous_id)\b/.test(card.replace(/\S+@\S+/g, '')), `identifier types in Chinese: ${card}`)
  // The RFM segment.
  if (p.traits.rfm_segment) {
    const seg = await page.locator('[data-test=rfm-segment]').innerText()
    assert.match(seg, han, `RFM segment ${p.traits.rfm_segment.value} in Chinese: ${seg}`)
  }
  // Enum values: gender.
  if (p.traits.gender) {
    await page.locator('#tab-basic').click()
    const v = await page.locator('[data-trait=gender] .tv').innerText()
    assert.match(v, /^(女|男|未知)$/, `gender ${p.traits.gender.value} in Chinese: ${v}`)
  }
  // Recommendations as a list, never JSON.
  const nb = page.locator('[data-test=next-best]')
  if (await nb.count()) assert.ok(!(await nb.innerText()).includes('{'), 'next best products are not JSON')
  // Every trait value of every dimension: no JSON object shown.
  for (const tab of await page.locator('[role=tab]').all()) {
    await tab.click()
    const vals = await page.locator('[data-test=traits] [role=tabpanel] .tv').allInnerTexts()
    for (const v of vals) assert.ok(!/^[[{]/.test(v.trim()), `a trait value shown as JSON: ${v}`)
  }
  // Event types in the timeline.
  await page.locator('[data-test=events] .el-table__row').first().waitFor()
  const types = await page.locator('[data-test=events] .el-table__body-wrapper .el-table__row').evaluateAll((rs) => rs.map((r) => r.children[1].textContent.trim()))
  assert.ok(types.length && types.every((x) => han.test(x)), `event types in Chinese: ${types}`)
  // The cluster's description.
  assert.ok(pid, 'the demo has a customer with cluster_terms')
  {
    await page.goto('/profiles/' + pid)
    await page.locator('[data-test=traits] [data-trait]').first().waitFor()
    for (const tab of await page.locator('[role=tab]').all()) {
      await tab.click()
      const row = page.locator('[data-trait=cluster_description] .tv')
      if (await row.count()) {
        const d = await row.innerText()
        assert.match(d, han, `cluster description in Chinese: ${d}`)
        return
      }
    }
    assert.fail('no cluster_description row on a clustered customer')
  }
})

// findProfile is the first demo customer (of the list's first 500) whose
// traits satisfy ok.
async function findProfile(ok) {
  for (const x of (await api('GET', '/v1/profiles?limit=500')).body.profiles || []) {
    const p = (await api('GET', '/v1/profiles/' + x.profile_id)).body
    if (p.traits && ok(p.traits)) return p
  }
  return null
}

// traitRow opens the dimension tab holding a trait's row on the 360 page
// and returns the row (null when no tab has it).
async function traitRow(page, trait) {
  for (const tab of await page.locator('[role=tab]').all()) {
    await tab.click()
    const row = page.locator(`[data-test=traits] tr[data-trait="${trait}"]`)
    if (await row.count()) return row
  }
  return null
}

test('words: the 360 page says buying roles, why nothing is recommended and where values came from in Chinese', { skip }, async () => {
  const { page } = s
  // A contact of an account: buying_role (EB/UB/TB/Coach) in words.
  let contact = null
  for (const a of (await api('GET', '/v1/accounts?sort=icp_score&limit=20')).body.accounts) {
    for (const x of (await api('GET', `/v1/accounts/${encodeURIComponent(a.id)}/people`)).body.people || []) {
      if (!x.profile_id) continue
      const p = (await api('GET', '/v1/profiles/' + x.profile_id)).body
      if (['EB', 'UB', 'TB', 'Coach'].includes(p.traits?.buying_role?.value)) contact = p
      if (contact) break
    }
    if (contact) break
  }
  assert.ok(contact, 'the demo has a contact with a buying_role')
  await page.goto('/profiles/' + contact.id)
  await page.locator('[data-test=traits] [data-trait]').first().waitFor()
  const role = await traitRow(page, 'buying_role')
  assert.ok(role, 'a buying_role row on the contact')
  const rv = await role.locator('.tv').innerText()
  const words = { EB: '经济决策者（EB）', UB: '使用者（UB）', TB: '技术把关者（TB）', Coach: '内线（Coach）' }
  assert.equal(rv, words[contact.traits.buying_role.value], `buying role ${contact.traits.buying_role.value} in words`)

  // Trait sources: every source the console names is in Chinese words, and
  // an analysis run's source is named by its kind; the third column.
  const known = /^(web|app|pos|crm|survey|computed|journey|needs|linkage|analytics\/.+)$/
  let seen = 0
  for (const tab of await page.locator('[role=tab]').all()) {
    await tab.click()
    const rows = await page.locator('[data-test=traits] [role=tabpanel] tr[data-trait]').evaluateAll((rs) => rs.map((r) => [r.dataset.trait, r.querySelectorAll('td')[1].textContent.trim()]))
    for (const [k, shown] of rows) {
      const src = contact.traits[k]?.source
      if (!src || !known.test(src)) continue
      seen++
      assert.match(shown, han, `source ${src} of ${k} in Chinese: ${shown}`)
      assert.notEqual(shown, src, `source ${src} of ${k} not as the API wrote it`)
    }
  }
  assert.ok(seen > 0, 'the contact has values from sources the console names')

  // A customer with no recommendation: the reason in Chinese, in the
  // recommendations card and the trait's row.
  const none = await findProfile((tr) => tr.next_best_products_reason?.value && tr.next_best_products_reason_code?.value)
  assert.ok(none, 'the demo has a customer with no recommendation and a reason code')
  const why = none.traits.next_best_products_reason.value
  await page.goto('/profiles/' + none.id)
  await page.locator('[data-test=traits] [data-trait]').first().waitFor()
  const card = await page.locator('[data-test=next-best-none]').innerText()
  assert.match(card, han, `reason in Chinese: ${card}`)
  assert.ok(!card.includes(why), `the card does not show the API's English (${why}): ${card}`)
  const row = await traitRow(page, 'next_best_products_reason')
  assert.ok(row, 'a next_best_products_reason row')
  const rw = await row.locator('.tv').innerText()
  assert.match(rw, han, `reason row in Chinese: ${rw}`)
  assert.ok(!rw.includes(why), `the row does not show the API's English (${why}): ${rw}`)
})
