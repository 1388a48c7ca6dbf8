import { createApp } from 'vue'
import App from './App.vue'
import { router, toSignIn } from './router'
import { i18n } from './i18n'
import { installExpiry, restore } from './session'
import { prefetch } from './api'
import { warm } from './format'
import 'element-plus/theme-chalk/base.css'
import './style.css'

installExpiry(toSignIn)
// First load: ask for the session and fetch the page's chunk while the app
// starts, rather than one after the other in the router's guard.
restore().catch(() => {})
const first = router.resolve(location.pathname + location.search)
// ...and the page's own data (a page names it in its route's meta), asked
// for before the chunks: a browser opens six connections to a server, and
// the data queued behind ten chunk requests came a second later under load.
const data = first.meta.prefetch as ((params: Record<string, unknown>) => [string, Record<string, string | number>?]) | undefined
if (data) prefetch(...data(first.params))
for (const m of first.matched) {
  const c = m.components?.default
  if (typeof c === 'function') (c as () => Promise<unknown>)()
}
createApp(App).use(i18n).use(router).mount('#app')
// While the page's data and chunks are on the way (a page with data to
// prefetch: the 360), the number and date formatters are made, off the
// first render's path.
if (data) warm()
