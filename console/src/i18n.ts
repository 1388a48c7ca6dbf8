import { createI18n } from 'vue-i18n'
import { ref } from 'vue'
import zhCommon from './locales/zh-CN/common'
import enCommon from './locales/en/common'

// Messages live in one file per page and language
// (locales/<lang>/<page>.ts, default export), under the file's name:
// t('profile.title'). Only `common` (the shell, shared components) is in
// the entry; each page's chunk carries its own namespaces and registers
// them with addMessages when it is evaluated, before the page renders
// (page-messages.ts adds the imports and the call at build time). A new
// page adds its two files and touches nothing shared.
type Messages = Record<string, unknown>

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

const first = initial()

// Namespaces of the languages not shown yet: given to vue-i18n when the
// language is first chosen (its merge copies every message; the language
// not shown needs no copy). en stays registered whatever is shown, as the
// fallback of a missing word.
const waiting: Record<Lang, Record<string, Messages>> = { 'zh-CN': {}, en: {} }
const merged: Record<Lang, boolean> = { 'zh-CN': first === 'zh-CN', en: true }

export const i18n = createI18n({
  legacy: false,
  locale: first,
  fallbackLocale: 'en',
  messages: (first === 'zh-CN' ? { 'zh-CN': { common: zhCommon }, en: { common: enCommon } } : { en: { common: enCommon } }) as any,
  missingWarn: false,
  fallbackWarn: false,
})
if (first !== 'zh-CN') waiting['zh-CN'].common = zhCommon

// addMessages registers a page's namespace in both languages; called by
// the page's chunk (see page-messages.ts), once per namespace and chunk.
export function addMessages(ns: string, byLang: Record<Lang, Messages>) {
  for (const l of Object.keys(byLang) as Lang[]) {
    if (merged[l]) i18n.global.mergeLocaleMessage(l, { [ns]: byLang[l] })
    else waiting[l][ns] = byLang[l]
  }
}

export const lang = ref<Lang>(first)

export function setLang(l: Lang) {
  if (!merged[l]) {
    merged[l] = true
    i18n.global.mergeLocaleMessage(l, waiting[l])
    waiting[l] = {}
  }
  i18n.global.locale.value = l
  lang.value = l
  localStorage.setItem('portrait.lang', l)
  document.documentElement.lang = l
}
document.documentElement.lang = lang.value
