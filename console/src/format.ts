import { lang } from './i18n'

// Formatting follows the console's language, not the browser's.
const loc = () => (lang.value === 'zh-CN' ? 'zh-CN' : 'en-US')

// Formatters are made once per language and options: toLocaleString with
// options builds a new Intl formatter on every call (about 0.1 ms each for
// dates), and the 360 page formats a few hundred values on its first
// render. Same output: toLocaleString is defined as format() of a new
// formatter with these arguments.
const formatters = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat>()
function numberFormat(o: Intl.NumberFormatOptions): Intl.NumberFormat {
  const k = 'n' + loc() + JSON.stringify(o)
  let f = formatters.get(k) as Intl.NumberFormat | undefined
  if (!f) formatters.set(k, (f = new Intl.NumberFormat(loc(), o)))
  return f
}
function dateFormat(o: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const k = 'd' + loc() + JSON.stringify(o)
  let f = formatters.get(k) as Intl.DateTimeFormat | undefined
  if (!f) formatters.set(k, (f = new Intl.DateTimeFormat(loc(), o)))
  return f
}
const dateTime: Intl.DateTimeFormatOptions = { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false }
const dateOnly: Intl.DateTimeFormatOptions = { year: 'numeric', month: '2-digit', day: '2-digit' }

// warm makes the formatters a page's first render uses. The first Intl
// formatter of a page loads the ICU data (tens of ms of the main thread,
// cold): main.ts calls this while the page's data and chunks are on the
// way, so that the render does not pay it.
export function warm() {
  numberFormat({ maximumFractionDigits: 2, minimumFractionDigits: 0 }).format(1)
  numberFormat({ maximumFractionDigits: 0, minimumFractionDigits: 0 }).format(1)
  numberFormat({ maximumFractionDigits: 1 }).format(1)
  dateFormat(dateTime).format(0)
}

export function num(v: unknown, digits = 0): string {
  if (v === null || v === undefined || v === '') return '—'
  const n = Number(v)
  if (!Number.isFinite(n)) return String(v)
  return numberFormat({ maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(n)
}

export function pct(v: unknown, digits = 1): string {
  if (v === null || v === undefined) return '—'
  const n = Number(v)
  if (!Number.isFinite(n)) return '—'
  return numberFormat({ maximumFractionDigits: digits }).format(n * 100) + '%'
}

export function money(v: unknown): string {
  if (v === null || v === undefined) return '—'
  const n = Number(v)
  if (!Number.isFinite(n)) return String(v)
  return '¥' + numberFormat({ maximumFractionDigits: 2, minimumFractionDigits: 0 }).format(n)
}

export function dt(v: unknown): string {
  if (!v) return '—'
  const d = new Date(String(v))
  if (Number.isNaN(d.getTime())) return String(v)
  return dateFormat(dateTime).format(d)
}

export function day(v: unknown): string {
  if (!v) return '—'
  const d = new Date(String(v))
  if (Number.isNaN(d.getTime())) return String(v)
  return dateFormat(dateOnly).format(d)
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
