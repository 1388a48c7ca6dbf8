import { test } from 'node:test'
import assert from 'node:assert/strict'
import { launch, api, base, skip, shot, noBlank } from './lib.mjs'

// Issue 15 in the browser: a token made through POST /v1/keys for an
// analyst with internal clearance signs in to the console, sees the phone
// masked as 138****8000 on the 360 page (the API masks; the page only
// shows), and no Keys or Audit page; the admin's Keys page makes and
// revokes tokens, and the auditor's Audit page lists the analyst's read.

async function signInWith(page, secret, next) {
  await page.goto(base + '/signin?next=' + encodeURIComponent(next))
  await page.locator('#token').fill(secret)
  await page.getByRole('button', { name: /Sign in|登录/ }).click()
  await page.waitForURL((u) => !u.pathname.startsWith('/signin'))
}

async function newToken(name, role, clearance) {
  const r = await api('POST', '/v1/keys', { name, role, clearance })
  assert.equal(r.status, 201, JSON.stringify(r.body))
  assert.match(r.body.secret, /^pat_/)
  return r.body
}

test('privacy: a low-clearance analyst sees 138****8000 on the 360 page', { skip }, async () => {
  const email = process.env.PORTRAIT_SAMPLE_EMAIL
  const p = (await api('GET', '/v1/profiles/lookup?type=email&value=' + encodeURIComponent(email))).body
  assert.ok(p?.id, 'sample profile not found')
  const phone = p.identifiers.find((i) => i.type === 'phone')?.value
  assert.ok(phone, 'the sample customer has no phone')
  const digits = phone.replace(/\D/g, '').replace(/^86(?=\d{11}$)/, '')
  const masked = digits.slice(0, 3) + '****' + digits.slice(-4)
  const analyst = await newToken('e2e-analyst', 'analyst', 'internal')
  const { browser, page, errors } = await launch({ lang: 'en' })
  try {
    await signInWith(page, analyst.secret, '/profiles/' + p.id)
    const card = page.locator('[data-test=identifiers]')
    await card.waitFor()
    const text = await card.innerText()
    assert.ok(text.includes(masked), `identity card shows ${text}, want ${masked}`)
    assert.ok(!text.includes(digits), `the phone ${digits} is shown unmasked`)
    assert.ok(!text.includes(email.toLowerCase()), `the email ${email} is shown unmasked`)
    const body = await page.locator('main').innerText()
    assert.ok(!body.includes(digits) && !body.includes(email.toLowerCase()), 'a confidential value on the page')
    assert.equal(await page.locator('[data-test=clearance]').innerText(), 'Internal')
    // The analyst has no keys or audit page in the menu.
    assert.equal(await page.locator('[data-menu=keys]').count(), 0)
    assert.equal(await page.locator('[data-menu=audit]').count(), 0)
    await noBlank(page, errors, 'privacy-profile')
    await shot(page, 'privacy-profile-analyst')
  } finally {
    await browser.close()
    await api('DELETE', '/v1/keys/' + analyst.key.id)
  }
})

// A tag rule that compares the phone with a number: an analyst (internal)
// reads it masked on the Tags page; opening it in the editor and saving it
// back is refused by the API (400, masked_value), and the page says so in
// the console's language, not with the API's English.
test('privacy: a masked tag rule saved back is refused in words', { skip }, async () => {
  const name = `e2e_masked_${Date.now()}`
  const made = await api('POST', '/v1/tags', { name, dimension: 'value', category: 'e2e', expression: 'traits.phone == "13800138000" || revenue >= 1e9' })
  assert.equal(made.status, 201, JSON.stringify(made.body))
  const analyst = await newToken('e2e-tag-analyst', 'analyst', 'internal')
  try {
    for (const [lang, words] of [
      ['zh-CN', '未保存：定义中 手机号 (phone) 与脱敏后的值'],
      ['en', 'Not saved: the definition compares Phone (phone) with a masked value'],
    ]) {
      const { browser, page, errors } = await launch({ lang })
      try {
        await signInWith(page, analyst.secret, '/tags')
        await page.locator(`[data-tag="${name}"]`).click()
        const detail = page.locator('[data-test=tag-detail]')
        await detail.getByText('traits.phone == "138****8000" || revenue >= 1e9', { exact: true }).first().waitFor()
        assert.ok(!(await page.locator('main').innerText()).includes('13800138000'), 'the phone literal is shown unmasked')
        await detail.getByRole('button', { name: /修改定义|Edit definition/ }).click()
        const form = page.locator('[data-test=tag-form]')
        assert.equal(await form.locator(':is(input,textarea)[data-test=tag-expression]').inputValue(), 'traits.phone == "138****8000" || revenue >= 1e9')
        await form.locator('[data-test=save-tag]').click()
        const err = form.locator('[data-test=tag-error]')
        await err.waitFor()
        const text = (await err.textContent()).trim()
        assert.ok(text.startsWith(words), `${lang}: the refusal reads ${text}`)
        assert.ok(!text.includes('saving it would replace'), `${lang}: the API's English is shown: ${text}`)
        await noBlank(page, errors, 'tags-masked-' + lang)
        if (lang === 'zh-CN') await shot(page, 'privacy-tag-masked-analyst')
      } finally {
        await browser.close()
      }
    }
    const kept = await api('GET', `/v1/tags/${name}`)
    assert.equal(kept.body.versions.length, 1, 'the refused save made a version')
    assert.equal(kept.body.versions[0].expression, 'traits.phone == "13800138000" || revenue >= 1e9')
  } finally {
    await api('DELETE', '/v1/keys/' + analyst.key.id)
    await api('DELETE', `/v1/tags/${name}`)
  }
})

// Found by the issue 15 probe: traits named in Chinese (a CRM export's
// 身份证号, 手机号, 邮箱, 家庭住址), a trait whose name says nothing
// (contact) and an order's note quoting a phone reached an analyst of
// internal clearance in clear on the 360 page. The API masks them; the
// page shows none.
test('privacy: Chinese-named traits and a note with a phone are masked on the 360 page', { skip }, async () => {
  const write = process.env.PORTRAIT_WRITE_KEY
  assert.ok(write, 'PORTRAIT_WRITE_KEY is not set')
  const send = async (path, body) => {
    const r = await fetch(base + path, { method: 'POST', headers: { Authorization: 'Bearer ' + write, 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
    assert.equal(r.status, 200, `${path}: ${r.status} ${await r.text()}`)
  }
  const raw = ['110101199003074514', '13987654321', 'zs2@qq.com', '世纪大道', '13600002222', '13533334444']
  await send('/v1/identify', { userId: 'e2e-zh-1', traits: { name: '测试用户', 身份证号: raw[0], 手机号: raw[1], 邮箱: raw[2], 家庭住址: '上海市浦东新区世纪大道1号', contact: raw[4] } })
  await send('/v1/track', { userId: 'e2e-zh-1', event: 'Order Completed', properties: { revenue: 10, note: '请联系' + raw[5] } })
  let p
  for (let i = 0; i < 50; i++) {
    p = (await api('GET', '/v1/profiles/lookup?type=user_id&value=e2e-zh-1')).body
    if (p?.id && p.event_count >= 2) break
    await new Promise((r) => setTimeout(r, 200))
  }
  assert.ok(p?.id && p.event_count >= 2, 'the profile was not built: ' + JSON.stringify(p))
  const analyst = await newToken('e2e-analyst-zh', 'analyst', 'internal')
  const { browser, page, errors } = await launch({ lang: 'zh-CN' })
  try {
    await signInWith(page, analyst.secret, '/profiles/' + p.id)
    await page.locator('[data-test=identifiers]').waitFor()
    await page.getByText('测试用户').first().waitFor()
    const body = await page.locator('main').innerText()
    for (const v of raw) assert.ok(!body.includes(v), `${v} is shown to an internal clearance`)
    await noBlank(page, errors, 'privacy-profile-zh')
  } finally {
    await browser.close()
    await api('DELETE', '/v1/keys/' + analyst.key.id)
  }
})

// Found by the issue 15 probe: the RFM grid's breakdown sums revenue
// (confidential) per cell, and an analyst of internal clearance read each
// small cell's revenue. The server now leaves the sums out for them
// (metric_masked); the grid shows customers and no revenue column rather
// than a revenue of 0.
test('privacy: the RFM grid shows no revenue to an internal clearance', { skip }, async () => {
  const analyst = await newToken('e2e-analyst-rfm', 'analyst', 'internal')
  const { browser, page, errors } = await launch({ lang: 'en' })
  try {
    await signInWith(page, analyst.secret, '/analytics')
    const card = page.locator('[data-test=analysis-rfm]')
    await card.locator('.el-table__body tr.el-table__row').first().waitFor({ timeout: 20000 })
    const head = await card.locator('.el-table__header').innerText()
    assert.ok(!/Revenue/i.test(head), `the RFM table has a revenue column: ${head}`)
    assert.ok(await card.getByRole('radio', { name: /Revenue/i }).isDisabled(), 'the revenue measure can be chosen')
    await noBlank(page, errors, 'privacy-rfm')
  } finally {
    await browser.close()
    await api('DELETE', '/v1/keys/' + analyst.key.id)
  }
})

// Found by the issue 15 probe: the business map's cells sum and average
// revenue, CLV and churn (confidential) over their members, and a cell of
// one customer gave an analyst of internal clearance that customer's
// figures. The server leaves them out (masked_figures); the drawer says
// hidden rather than ¥0 or —, churn is not offered for colouring, and a
// note names what is not shown, in both languages.
test('privacy: the business map shows counts, not revenue, CLV or churn, to an internal clearance', { skip }, async () => {
  const analyst = await newToken('e2e-analyst-map', 'analyst', 'internal')
  for (const [lang, hiddenWord, note] of [['en', 'Hidden', 'Not shown'], ['zh-CN', '已隐藏', '未显示']]) {
    const { browser, page, errors } = await launch({ lang })
    try {
      await signInWith(page, analyst.secret, '/map')
      await page.locator('[data-test=masked-figures]').waitFor({ timeout: 20000 })
      assert.ok((await page.locator('[data-test=masked-figures]').innerText()).includes(note))
      const metric = await page.locator('[data-test=metric]').innerText()
      assert.ok(!/Churn|流失概率/.test(metric), `churn can colour the map: ${metric}`)
      await page.locator('[data-cell]').first().click()
      for (const fig of ['revenue', 'clv', 'churn_probability']) {
        const dd = page.locator(`[data-test=drawer] [data-fig=${fig}]`)
        const text = await dd.innerText()
        assert.ok(text.includes(hiddenWord) && !/¥|%/.test(text), `${fig} shows ${text}`)
      }
      await noBlank(page, errors, 'privacy-map-' + lang)
    } finally {
      await browser.close()
    }
  }
  await api('DELETE', '/v1/keys/' + analyst.key.id)
})
