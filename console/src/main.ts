import { createApp } from 'vue'
import App from './App.vue'
import { router, toSignIn } from './router'
import { i18n } from './i18n'
import { installExpiry, restore, session } from './session'
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
// The server has usually preloaded it with the page already (<link
// rel=preload as=fetch>): prefetch then takes that answer.
const data = first.meta.fetch as string | undefined
// Not when the page said nobody is signed in (the router goes to sign-in).
if (data && !(session.checked && !session.principal)) {
  prefetch(data.replace(/:(\w+)/g, (_, k: string) => encodeURIComponent(String(first.params[k] ?? ''))), undefined, !!session.principal)
}
for (const m of first.matched) {
  const c = m.components?.default
  if (typeof c === 'function') (c as () => Promise<unknown>)()
}
createApp(App).use(i18n).use(router).mount('#app')
// While the page's data and chunks are on the way (a page with data to
// prefetch: the 360), the number and date formatters are made, off the
// first render's path.
if (data) warm()
