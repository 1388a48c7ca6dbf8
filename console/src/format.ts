import { lang } from './i18n'

// Formatting follows the console's language, not the browser's.
const loc = () => (lang.value === 'zh-CN' ? 'zh-CN' : 'en-US')

export function num(v: unknown, digits = 0): string {
  if (v === null || v === undefined || v === '') return '—'
  const n = Number(v)
  if (!Number.isFinite(n)) return String(v)
  return n.toLocaleString(loc(), { maximumFractionDigits: digits, minimumFractionDigits: 0 })
}

export function pct(v: unknown, digits = 1): string {
  if (v === null || v === undefined) return '—'
  const n = Number(v)
  if (!Number.isFinite(n)) return '—'
  return (n * 100).toLocaleString(loc(), { maximumFractionDigits: digits }) + '%'
}

export function money(v: unknown): string {
  if (v === null || v === undefined) return '—'
  const n = Number(v)
  if (!Number.isFinite(n)) return String(v)
  return '¥' + n.toLocaleString(loc(), { maximumFractionDigits: 2, minimumFractionDigits: 0 })
}

export function dt(v: unknown): string {
  if (!v) return '—'
  const d = new Date(String(v))
  if (Number.isNaN(d.getTime())) return String(v)
  return d.toLocaleString(loc(), { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false })
}

export function day(v: unknown): string {
  if (!v) return '—'
  const d = new Date(String(v))
  if (Number.isNaN(d.getTime())) return String(v)
  return d.toLocaleDateString(loc(), { year: 'numeric', month: '2-digit', day: '2-digit' })
}

// value renders any trait value: lists joined, objects as compact JSON.
export function value(v: unknown): string {
  if (v === null || v === undefined) return '—'
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') || '—'
  if (typeof v === 'object') return JSON.stringify(v)
  // Years and small counts read better without a group separator.
  if (typeof v === 'number') return Math.abs(v) < 10000 ? String(Math.round(v * 10000) / 10000) : num(v, 4)
  if (typeof v === 'boolean') return v ? '✓' : '✗'
  const s = String(v)
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(s)) return dt(s)
  return s
}
