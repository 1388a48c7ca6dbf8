// send.mjs sends one customer's journey to Portrait with the real Segment
// SDK (@segment/analytics-node), then prints what it sent as JSON on stdout.
// The Go test TestSegmentNodeSDK (e2e/sdk_test.go) runs it and reads the
// resulting profile back through the query API.
//
// Configuration comes from the environment:
//   PORTRAIT_URL        base URL of the server (or of a proxy in front of it)
//   PORTRAIT_WRITE_KEY  the write key (the SDK sends it as HTTP Basic user)
//   E2E_RUN             a run id; every id and messageId derives from it, so
//                       running twice with the same E2E_RUN re-sends the
//                       very same messageIds (what a retrying client does)
//   E2E_TRACKS          how many "Order Completed" tracks (default 25)
//   E2E_BATCH           maxEventsInBatch (default 10)
import { Analytics } from '@segment/analytics-node'

const env = (name, def) => process.env[name] ?? def
const host = env('PORTRAIT_URL')
const writeKey = env('PORTRAIT_WRITE_KEY')
if (!host || !writeKey) {
  console.error('send.mjs: PORTRAIT_URL and PORTRAIT_WRITE_KEY must be set')
  process.exit(2)
}
const run = env('E2E_RUN', 'run1')
const tracks = Number(env('E2E_TRACKS', '25'))
const batchSize = Number(env('E2E_BATCH', '10'))

const analytics = new Analytics({
  writeKey,
  host,
  path: '/v1/batch',
  maxEventsInBatch: batchSize,
  flushInterval: 500,
  maxRetries: 5,
  httpRequestTimeout: 30000,
})

const sent = []
const failed = []
const responses = []
analytics.on('http_response', (r) => responses.push(r.status))
analytics.on('error', (err) => failed.push({ code: err.code, reason: String(err.reason ?? err) }))

const userId = `user-${run}`
const anonymousId = `anon-${run}`
const secondDevice = `anon2-${run}`
const email = `zhang.wei.${run}@example.com`
const traits = {
  email,
  name: '张伟',
  phone: '+86 139 1234 5678',
  city: '上海',
  note: '喜欢乌龙茶 · likes oolong',
}

// Every call carries an explicit messageId (the SDK's own default is
// "node-next-<ms>-<uuid>"): a second run must re-send the same ones.
function call(method, msg) {
  const messageId = `${run}-${sent.length}-${method}`
  const payload = { ...msg, messageId }
  sent.push({ type: method, messageId, userId: msg.userId, anonymousId: msg.anonymousId })
  analytics[method](payload, (err) => {
    if (err) failed.push({ messageId, reason: String(err.reason ?? err) })
  })
}

// Anonymous browsing, then the visitor identifies.
call('page', { anonymousId, category: 'Shop', name: '首页 Home', properties: { url: 'https://shop.example.com/' } })
call('identify', { userId, anonymousId, traits })
for (let i = 0; i < tracks; i++) {
  call('track', {
    userId,
    event: 'Order Completed',
    properties: { order_id: `${run}-order-${i}`, revenue: 10 + i, currency: 'CNY', products: [{ sku: `sku-${i % 3}`, name: '茶叶' }] },
  })
}
call('group', { userId, groupId: `acme-${run}`, traits: { name: '上海阿克米科技有限公司', industry: 'software' } })
// A second device browses anonymously; alias ties it to the user.
call('page', { anonymousId: secondDevice, name: 'Pricing' })
call('alias', { userId, previousId: secondDevice })

await analytics.closeAndFlush({ timeout: 60000 })
process.stdout.write(JSON.stringify({ run, userId, anonymousId, secondDevice, email, traits, batchSize, sent, failed, responses }) + '\n')
