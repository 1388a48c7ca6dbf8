// Page 5, 标签与特征: the taxonomy tree with counts from the API, a tag's
// definition and versions, an invalid expression refused with the API's
// message in place, a tag and a computed trait defined from the forms, and
// the trait schema with fill rates.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { open, api, axe, keyboard, shot, skip } from './lib.mjs'

let s
before(async () => {
  if (!skip) s = await open('zh-CN')
})
after(async () => {
  if (s) await s.browser.close()
})

test('tags: taxonomy with counts, definitions, inline errors, schema', { skip }, async () => {
  const { page, errors } = s
  const tags = await api('GET', '/v1/tags')
  const bd = await api('GET', '/v1/breakdown?by=tag&top=1000')
  assert.equal(tags.status, 200)
  assert.ok(tags.body.tags.length > 0, 'the demo defines tags')
  await page.goto('/tags')
  await page.getByRole('heading', { name: '标签与特征', level: 1 }).waitFor()

  // Every tag is in the tree under its dimension, with the API's count.
  const tree = page.locator('[data-test=taxonomy]')
  await tree.getByText('客户价值 · value').waitFor()
  for (const tg of tags.body.tags) {
    const node = tree.locator(`[data-tag="${tg.name}"]`)
    await node.waitFor()
    const want = (bd.body.groups.find((g) => g.key === tg.name)?.count ?? 0).toLocaleString('zh-CN')
    assert.equal((await node.locator('.cnt').textContent()).trim(), want, `count of ${tg.name}`)
  }

  // A tag's definition and history.
  const first = tags.body.tags[0]
  await tree.locator(`[data-tag="${first.name}"]`).click()
  const detail = page.locator('[data-test=tag-detail]')
  await detail.getByText(first.expression, { exact: true }).first().waitFor()
  const versions = await api('GET', `/v1/tags/${encodeURIComponent(first.name)}`)
  assert.equal(await detail.locator('[data-test=versions] .el-table__row').count(), versions.body.versions.length)

  // An invalid expression: the API's message, in place.
  const name = `e2e_tag_${Date.now()}`
  const form = page.locator('[data-test=tag-form]')
  await form.getByLabel('名称').fill(name)
  await form.locator(':is(input,textarea)[data-test=tag-expression]').fill('revenue >= ')
  await form.locator('[data-test=save-tag]').click()
  const err = form.locator('[data-test=tag-error]')
  await err.waitFor()
  const apiErr = await api('POST', '/v1/tags', { name, dimension: 'value', category: '', expression: 'revenue >= ' })
  assert.equal(apiErr.status, 400)
  assert.equal((await err.textContent()).trim(), apiErr.body.error.message.replace(/\n? \| /g, '\n').trim())

  // A valid one is saved, shown in the tree with its version.
  await form.locator(':is(input,textarea)[data-test=tag-expression]').fill('revenue >= 5000')
  await form.getByLabel('类别').fill('e2e')
  await form.locator('[data-test=save-tag]').click()
  await tree.locator(`[data-tag="${name}"]`).waitFor({ timeout: 15000 })
  const saved = await api('GET', `/v1/tags/${name}`)
  assert.equal(saved.status, 200)
  assert.equal(saved.body.versions[0].expression, 'revenue >= 5000')
  await api('DELETE', `/v1/tags/${name}`)

  // A computed trait with a broken filter: the message in place.
  await page.getByRole('tab', { name: '新建计算特征' }).click()
  const tf = page.locator('[data-test=trait-form]')
  await tf.getByLabel('名称').fill(`e2e_trait_${Date.now()}`)
  await tf.locator(':is(input,textarea)[data-test=trait-filter]').fill('properties.revenue >')
  await tf.locator('[data-test=save-trait]').click()
  await tf.locator('[data-test=trait-error]').filter({ hasText: 'filter' }).waitFor()

  // The schema: every trait with its type and the quality report's fill rate.
  const schema = await api('GET', '/v1/traits')
  const quality = await api('GET', '/v1/quality')
  const table = page.locator('[data-test=schema]')
  await table.locator('.el-table__row').first().waitFor()
  const city = quality.body.traits.find((x) => x.trait === 'city')
  const cityRow = table.locator('.el-table__body tr.el-table__row', { hasText: 'city' }).filter({ has: page.locator('code', { hasText: /^city$/ }) })
  assert.match(await cityRow.first().textContent(), new RegExp(`${Math.round(city.completeness * 1000) / 10}%`))
  assert.ok(schema.body.traits.length > 10)

  await shot(page, 'tags', { fullPage: true })
  await axe(page, 'tags')
  await keyboard(page, 'tags')
  assert.deepEqual(errors, [])
})
