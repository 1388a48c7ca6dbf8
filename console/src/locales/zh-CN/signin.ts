export default {
  title: '登录 Portrait 客户画像平台',
  token: 'API 令牌',
  tokenHint: '管理员令牌（pat_…），由 portrait serve 首次启动时打印，或来自 PORTRAIT_ADMIN_TOKEN',
  submit: '登录',
  expired: '会话已过期，请重新登录，登录后将回到原页面。',
  link: '该登录链接已使用或已过期，请输入令牌登录，或重新运行 portrait demo 获取新链接。',
  throttled: '登录失败次数过多，请稍后再试。',
  demoHint: '运行 portrait demo 时，终端会打印一次性登录链接。',
}
