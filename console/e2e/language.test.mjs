import { test } from 'node:test'
import assert from 'node:assert/strict'
import { launch, signIn, setLang, shot, axe, skip } from './lib.mjs'

test('language: switching to Chinese shows Chinese labels, and it is remembered', { skip }, async () => {
  const { browser, page } = await launch()
  try {
    await signIn(page, '/')
    await setLang(page, 'zh-CN')
    await page.getByRole('heading', { name: '概览' }).waitFor()
    const nav = await page.getByRole('navigation', { name: '主导航' }).innerText()
    for (const label of ['概览', '客户查找', '客户列表', '客户细分', '标签与特征', '分析', '数据']) assert.ok(nav.includes(label), `menu without ${label}: ${nav}`)
    await page.getByRole('button', { name: '退出登录' }).waitFor()
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN')
    await page.locator('[data-menu=data]').click()
    await page.getByRole('heading', { name: '导入文件' }).waitFor()
    await page.getByRole('heading', { name: '数据质量报告' }).waitFor()
    await page.reload()
    await page.getByRole('heading', { name: '导入文件' }).waitFor()
    await axe(page, 'data (zh-CN)')
    await page.locator('[data-menu=overview]').click()
    await page.getByRole('heading', { name: '概览' }).waitFor()
    await shot(page, 'overview-zh')
    // Every page follows the switch, not only the shell.
    await page.locator('[data-menu=segments]').click()
    await page.getByRole('heading', { name: '客户细分', level: 1 }).waitFor()
    await axe(page, 'segments (zh-CN)')
    await setLang(page, 'en')
    await page.getByText('Sign out', { exact: true }).waitFor()
  } finally {
    await browser.close()
  }
})
