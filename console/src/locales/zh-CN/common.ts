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
  // 控制台自行表述的 API 拒绝（错误详情的 code）
  apiErrors: {
    masked_value: '未保存：定义中 {field} 与脱敏后的值（如 138****8000）比较，这是密级不足者看到的样子。保存会用掩码替换真实值。请填写真实值，或删去这个比较。',
  },
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
    gender: '性别',
    birth_year: '出生年份',
    province: '省份',
    email: '邮箱',
    phone: '手机号',
    member_level: '会员等级',
    preferred_channel: '偏好渠道',
    signup_channel: '注册渠道',
    signup_date: '注册日期',
    first_name: '名',
    last_name: '姓',
    rfm_r: 'RFM 最近购买 R',
    rfm_f: 'RFM 购买频次 F',
    rfm_m: 'RFM 消费金额 M',
    expected_spend: '预期消费',
    purchase_probability_90d: '90 天购买概率',
    next_best_products: '推荐商品',
    journey_history: '旅程阶段记录',
    journey_stage: '旅程阶段',
    avg_order_value: '客单价',
    orders: '订单数',
    sessions: '访问次数',
    days_since_last_order: '距上次购买天数',
    tenure_days: '客户年龄（天）',
    cluster: '客户聚类',
    cluster_description: '聚类描述',
    cluster_terms: '聚类特征',
    buying_role: '采购角色',
    hierarchy_level: '层级',
    title: '职务',
    company_id: '公司 ID',
    journey_reached: '已到达的旅程阶段',
    journey_stage_since: '进入当前旅程阶段的时间',
    next_best_products_reason: '无推荐的原因',
    next_best_products_reason_code: '无推荐的原因（代码）',
    next_best_products_reason_params: '无推荐的原因（参数）',
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
  // Values of enum-like traits (traitValueWord in src/roles.ts): the table
  // is picked by the trait (valueTables there); a value not named here is
  // shown as it is.
  values: {
    gender: { female: '女', male: '男', unknown: '未知' },
    channel: { web: '网站', app: 'App', store: '门店', online: '线上', server: '服务端', wechat_mini_program: '微信小程序', wechat: '微信', email: '邮件', sms: '短信' },
    // Buying roles and organisation levels (account.Roles, account.Levels):
    // the accounts pages and a contact's traits on the 360 page.
    buyingRole: { EB: '经济决策者（EB）', UB: '使用者（UB）', TB: '技术把关者（TB）', Coach: '内线（Coach）' },
    orgLevel: { decision: '决策层', senior: '高层', middle: '中层', frontline: '基层' },
  },
  // Where a trait's value came from (an event's source, the server's own
  // writers); a source not named here (one a customer's system chose) is
  // shown as it is. analytics/<kind> is named by sourcePatterns.
  sources: {
    web: '网站', app: '移动应用（App）', pos: '门店收银（POS）', crm: '客户关系管理（CRM）', survey: '问卷', tracking: '埋点采集', import: '文件导入',
    analysis: '分析', declared: '客户自述', computed: '系统计算', journey: '客户旅程', needs: '需求分析', linkage: '身份合并',
    'consent-api': '授权接口', $retention: '数据保留', bench: '压测',
  },
  sourcePatterns: { 'analytics/': '分析：{x}' },
  analysisKinds: { kmeans: 'k-means 聚类', fpgrowth: 'FP-Growth 关联', clv: 'CLV（BG/NBD）', churn: '流失预测' },
  // Segment-spec event types (the timeline and its filter).
  eventTypes: { identify: '身份识别', track: '行为事件', page: '页面浏览', screen: '屏幕浏览', group: '群组', alias: '别名' },
  // Identifier types (the identity card, merges).
  idTypes: { user_id: '用户 ID', anonymous_id: '匿名 ID', email: '邮箱', phone: '手机号', device_id: '设备 ID', wechat_openid: '微信 OpenID', wechat_unionid: '微信 UnionID' },
  // Traits named by a pattern (journey.DaysIn, journey.ChannelOf).
  traitPatterns: { journey_days_in_: '{x} 阶段停留天数', journey_channel_: '到达 {x} 阶段的渠道' },
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
