import { test } from 'node:test'
import assert from 'node:assert/strict'
import { launch, signIn, shot, checkA11y, checkKeyboard, noBlank, api } from './lib.mjs'

test('overview: figures from the API, or a clear message where the API lacks them', async () => {
  const { browser, page, errors } = await launch()
  try {
    await signIn(page, '/')
    const ov = await api('/v1/overview')
    if (ov.status === 200) {
      await page.locator('[data-stat=profiles]').waitFor()
      const shown = (await page.locator('[data-stat=profiles]').innerText()).replace(/[^\d]/g, '')
      assert.equal(Number(shown), ov.body.profiles)
      await page.locator('.chart canvas').first().waitFor()
    } else {
      assert.equal(ov.status, 404)
      await page.getByText(/does not offer \/v1\/overview yet/).waitFor()
    }
    // The saved segments come from /v1/segments, which every server has.
    const segs = await api('/v1/segments')
    await page.getByText(segs.body.segments[0].name).first().waitFor()
    await noBlank(page, errors, 'overview')
    await checkA11y(page, 'overview')
    await checkKeyboard(page, 'overview')
    await shot(page, 'overview')
  } finally {
    await browser.close()
  }
})
