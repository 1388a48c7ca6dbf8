import { createApp } from 'vue'
import App from './App.vue'
import { router, toSignIn } from './router'
import { i18n } from './i18n'
import { installExpiry } from './session'
import 'element-plus/theme-chalk/base.css'
import './style.css'

installExpiry(toSignIn)
createApp(App).use(i18n).use(router).mount('#app')
