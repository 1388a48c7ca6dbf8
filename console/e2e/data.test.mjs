import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { launch, signIn, shot, axe, keyboard, noBlank, api, skip } from './lib.mjs'

test('data: a small CSV uploaded through the page, with its summary', { skip }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'portrait-csv-'))
  const file = path.join(dir, 'crm-e2e.csv')
  // Three customers (Chinese names, mobile numbers in several formats) and
  // one row without any identifier, which must be quarantined.
  const stamp = Date.now()
  writeFileSync(
    file,
    'user_id,name,email,phone,city\n' +
      `e2e-${stamp}-1,张伟,zhang.wei.${stamp}@example.com,138 0013 8000,上海市\n` +
      `e2e-${stamp}-2,李娜,li.na.${stamp}@example.com,+86 139-0013-9000,北京市\n` +
      `e2e-${stamp}-3,王芳,wang.fang.${stamp}@example.com,13700137000,广州市\n` +
      ',,,,深圳市\n',
  )
  const { browser, page, errors } = await launch()
  try {
    await signIn(page, '/data')
    await page.locator('#imp-file').setInputFiles(file)
    await page.locator('#imp-source').fill('crm_e2e')
    await page.locator('[data-test=upload]').click()
    await page.locator('[data-test=summary]').waitFor({ timeout: 30000 })
    await page.locator('[data-sum=state]', { hasText: /Done|已完成/ }).waitFor({ timeout: 30000 })
    const rows = Number((await page.locator('[data-sum=rows]').innerText()).replace(/[^\d]/g, ''))
    const accepted = Number((await page.locator('[data-sum=accepted]').innerText()).replace(/[^\d]/g, ''))
    const quarantined = Number((await page.locator('[data-sum=quarantined]').innerText()).replace(/[^\d]/g, ''))
    assert.equal(rows, 4)
    assert.equal(accepted, 3)
    assert.equal(quarantined, 1)
    await page.locator('[data-test=reasons]').waitFor()
    await page.locator('[data-sum=profiles]').waitFor()
    // The mapping used is shown next to the summary: inferred here, phone
    // read as a phone.
    const mapping = page.locator('[data-test=import-mapping]')
    await mapping.waitFor()
    await mapping.getByText(/Inferred from the header|根据表头自动推断/).waitFor()
    const row = mapping.locator('.el-table__row', { hasText: 'traits.phone' })
    assert.equal(await row.count(), 1, 'the phone column is in the mapping')
    assert.match(await row.innerText(), /phone\s+traits\.phone\s+phone/)
    // The imported customer is there, through the API.
    const p = await api('GET', `/v1/profiles/lookup?type=user_id&value=e2e-${stamp}-1`)
    assert.equal(p.status, 200)
    await noBlank(page, errors, 'data')
    await axe(page, 'data')
    await keyboard(page, 'data')
    await shot(page, 'data')
  } finally {
    await browser.close()
  }
})
