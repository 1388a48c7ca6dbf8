import { createI18n } from 'vue-i18n'
import { ref } from 'vue'

// Messages live in one file per page and language
// (locales/<lang>/<page>.ts, default export), merged here under the file's
// name: a new page adds its two files and touches nothing shared.
type Messages = Record<string, Record<string, unknown>>

function collect(mods: Record<string, { default: Record<string, unknown> }>): Messages {
  const out: Messages = {}
  for (const [path, mod] of Object.entries(mods)) {
    const name = path.replace(/^.*\//, '').replace(/\.ts$/, '')
    out[name] = mod.default
  }
  return out
}

const zh = collect(import.meta.glob('./locales/zh-CN/*.ts', { eager: true }))
const en = collect(import.meta.glob('./locales/en/*.ts', { eager: true }))

export type Lang = 'zh-CN' | 'en'
export const langs: { value: Lang; label: string }[] = [
  { value: 'zh-CN', label: '中文' },
  { value: 'en', label: 'English' },
]

function initial(): Lang {
  const saved = localStorage.getItem('portrait.lang')
  if (saved === 'zh-CN' || saved === 'en') return saved
  return navigator.language.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en'
}

export const i18n = createI18n({
  legacy: false,
  locale: initial(),
  fallbackLocale: 'en',
  messages: { 'zh-CN': zh, en } as any,
  missingWarn: false,
  fallbackWarn: false,
})

export const lang = ref<Lang>(i18n.global.locale.value as Lang)

export function setLang(l: Lang) {
  i18n.global.locale.value = l
  lang.value = l
  localStorage.setItem('portrait.lang', l)
  document.documentElement.lang = l
}
document.documentElement.lang = lang.value
