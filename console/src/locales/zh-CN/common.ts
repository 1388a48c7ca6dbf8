export default {
  product: 'Portrait 客户画像',
  menu: {
    overview: '概览',
    search: '客户查找',
    profiles: '客户列表',
    segments: '客户细分',
    accounts: '对公客户', // accounts (issue 16)
    tags: '标签与特征',
    analytics: '分析',
    data: '数据',
    map: '经营地图', // customer business map (issue 14)
    // privacy-access
    keys: '密钥与角色',
    insight: '人群洞察', // the insight page's title (issue 14 §4)
    audit: '审计日志',
  },
  language: '语言',
  signOut: '退出登录',
  signedInAs: '当前用户：{name}（{role}）',
  loading: '加载中…',
  retry: '重试',
  none: '无',
  empty: '暂无数据',
  total: '共 {n} 条',
  missingEndpoint: '此服务器尚未提供 {path} 接口，该模块暂不可用。',
  errorTitle: '请求失败',
  notFound: '页面不存在',
  backHome: '返回概览',
  skipToContent: '跳到主要内容',
  mainNav: '主导航',
  figures: '数据表',
  chart: '图表',
  yes: '是',
  no: '否',
  count: '数量',
  share: '占比',
  stage: {
    prospect: '潜在客户',
    new: '新客户',
    repeat: '复购客户',
    loyal: '忠诚客户',
    at_risk: '流失风险',
    churned: '已流失',
  },
  // Classification levels (issue 15), the same words on every page and as
  // the API's level_zh: console/levels_test.go holds them to it.
  levels: { public: '公开', internal: '内部', confidential: '秘密', secret: '机密' },
  // Access roles (access.Roles and custom), shown through roleWord
  // (src/roles.ts) on every page: console/roles_test.go checks the table.
  roles: { admin: '管理员', analyst: '分析师', marketing: '市场', sales: '销售', service: '客服', auditor: '审计员', custom: '自定义' },
  // Traits a list shows as a column (the customer list, a segment's
  // members), through wordFor('common.traits', name); others by name.
  traits: {
    name: '姓名',
    city: '城市',
    lifecycle_stage: '生命周期',
    revenue: '消费金额',
    rfm_segment: 'RFM 分群',
    rfm_score: 'RFM 评分',
    clv_12m: '12 个月 CLV',
    churn_probability: '流失概率',
    purchase_count: '购买次数',
    p_alive: '存活概率',
    days_since_last_purchase: '距上次购买天数',
    last_seen: '最近活跃',
  },
  // RFM segments (traits.rfm_segment), as the RFM literature names them.
  rfm: {
    champions: '重要价值客户',
    loyal: '忠诚客户',
    potential_loyalist: '潜在忠诚客户',
    new_customer: '新客户',
    promising: '有潜力客户',
    need_attention: '需要关注',
    about_to_sleep: '即将沉睡',
    cant_lose: '不能流失',
    at_risk: '流失风险',
    hibernating: '沉睡客户',
  },
  dim: {
    basic: '人口统计',
    behaviour: '消费习惯',
    needs: '需求偏好',
    feedback: '反馈评价',
    value: '客户价值',
    risk: '风险',
    other: '其他',
  },
}
