import { test } from 'node:test'
import assert from 'node:assert/strict'
import { launch, signIn, shot, axe, keyboard, noBlank, api, skip } from './lib.mjs'

test('overview: figures and saved segments equal the API', { skip }, async () => {
  const { browser, page, errors } = await launch()
  try {
    await signIn(page, '/')
    const ov = await api('GET', '/v1/overview')
    assert.equal(ov.status, 200, `GET /v1/overview: ${JSON.stringify(ov.body)}`)
    await page.locator('[data-stat=profiles]').waitFor()
    const shown = (await page.locator('[data-stat=profiles]').innerText()).replace(/[^\d]/g, '')
    assert.equal(Number(shown), ov.body.profiles)
    await page.locator('.chart canvas').first().waitFor()
    const segs = await api('GET', '/v1/segments')
    await page.getByText(segs.body.segments[0].name).first().waitFor()
    await noBlank(page, errors, 'overview')
    await axe(page, 'overview')
    await keyboard(page, 'overview')
    await shot(page, 'overview')
  } finally {
    await browser.close()
  }
})
