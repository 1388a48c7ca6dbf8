import { createApp } from 'vue'
import App from './App.vue'
import { router, toSignIn } from './router'
import { i18n } from './i18n'
import { installExpiry, restore } from './session'
import 'element-plus/theme-chalk/base.css'
import './style.css'

installExpiry(toSignIn)
// First load: ask for the session and fetch the page's chunk while the app
// starts, rather than one after the other in the router's guard.
restore().catch(() => {})
for (const m of router.resolve(location.pathname + location.search).matched) {
  const c = m.components?.default
  if (typeof c === 'function') (c as () => Promise<unknown>)()
}
createApp(App).use(i18n).use(router).mount('#app')
