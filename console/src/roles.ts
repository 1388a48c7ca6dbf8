import { i18n } from './i18n'
import { money } from './format'

// The global composer is typed by its messages; a key made at run time
// needs it as a plain lookup (else TypeScript's instantiation runs away).
const words = i18n.global as unknown as { t: (key: string, named?: Record<string, unknown>) => string; te: (key: string) => boolean }

// wordFor is the word a table of the locale files (common.roles,
// analytics.kinds ...) has for an API value in the console's language, or
// the value itself when the table does not name it (a custom role, a kind
// added later): a value is never hidden. It reads the locale, so a
// template that calls it follows the language switch.
export function wordFor(table: string, value: string | null | undefined): string {
  if (value === null || value === undefined || value === '') return ''
  const key = table + '.' + value
  return words.te(key) ? words.t(key) : value
}

// roleWord is the word for an access role (access.Roles and custom) from
// the one table common.roles, so that the shell, the keys page, the audit
// trail and a delivery's record name a role alike (console/roles_test.go
// TestRoleWordsAgree holds the table to the roles the API knows).
export function roleWord(role: string | null | undefined): string {
  return wordFor('common.roles', role)
}

// valueTables picks the locale table of words for an enum-like trait's
// values: lifecycle stages, RFM segments, gender and the channel traits.
const valueTables: Record<string, string> = {
  lifecycle_stage: 'common.stage',
  journey_stage: 'common.stage',
  rfm_segment: 'common.rfm',
  gender: 'common.values.gender',
  preferred_channel: 'common.values.channel',
  signup_channel: 'common.values.channel',
  channel: 'common.values.channel',
  buying_role: 'common.values.buyingRole',
  hierarchy_level: 'common.values.orgLevel',
}

// traitValueWord is the word for a trait's value when the trait is
// enum-like and the value is a string the table names; otherwise null (the
// caller formats the value as usual).
export function traitValueWord(trait: string, value: unknown): string | null {
  const table = valueTables[trait] ?? (trait.startsWith('journey_channel_') ? 'common.values.channel' : undefined)
  if (!table || typeof value !== 'string') return null
  return wordFor(table, value)
}

// traitWord is the label of a trait (common.traits) or its name: the
// words used in sentences and chips ("按 RFM 评分 统计"), never hiding a
// trait the table lacks.
export function traitWord(trait: string | null | undefined): string {
  const w = wordFor('common.traits', trait)
  if (w !== trait || !trait) return w
  // journey_days_in_<stage>, journey_channel_<stage>: named by the stage.
  for (const prefix of ['journey_days_in_', 'journey_channel_']) {
    if (trait.startsWith(prefix) && words.te('common.traitPatterns.' + prefix)) {
      return words.t('common.traitPatterns.' + prefix, { x: wordFor('common.stage', trait.slice(prefix.length)) })
    }
  }
  return trait
}

// codeWord says a sentence the API wrote in English from its code and
// parameters (a merge's reason_code, an account's gap_codes) with the
// locale table's words, or returns the API's own text when the code is
// absent or the table does not know it (a code added later).
export function codeWord(table: string, code: string | null | undefined, params: Record<string, unknown> | null | undefined, text: string): string {
  if (!code) return text
  const key = table + '.' + code
  return words.te(key) ? words.t(key, params ?? {}) : text
}

// apiErrorWords says an API refusal the console words itself, from its
// detail's code, in the console's language: masked_value (a tag rule, a
// computed trait's filter or a segment compares a classified field with a
// masked value such as 138****8000, which is what a caller below the
// field's clearance reads; saving it back is refused). null for any other
// error, which is shown as the server wrote it.
export function apiErrorWords(e: unknown): string | null {
  const details = (e as { details?: { code?: string; field?: string }[] } | null)?.details
  const d = Array.isArray(details) ? details.find((x) => x.code && words.te('common.apiErrors.' + x.code)) : undefined
  if (!d?.code) return null
  const field = d.field ? traitWord(d.field) : ''
  return words.t('common.apiErrors.' + d.code, { field: field && field !== d.field ? `${field} (${d.field})` : d.field || '' })
}

// sourceWord is where a value came from in words (common.sources; an
// analysis run's analytics/<kind> by the kind), or the source's own name
// when the table does not know it (a source a customer's system named).
export function sourceWord(source: string | null | undefined): string {
  const w = wordFor('common.sources', source)
  if (w !== source || !source) return w
  const kind = source.startsWith('analytics/') ? source.slice('analytics/'.length) : ''
  if (kind && words.te('common.sourcePatterns.analytics/')) return words.t('common.sourcePatterns.analytics/', { x: wordFor('common.analysisKinds', kind) })
  return source
}

// nbReasonWord says why a customer has no recommendation from the trait
// next_best_products_reason_code and its params (analytics/fpgrowth
// Reason), else the API's English next_best_products_reason.
export function nbReasonWord(code: unknown, params: unknown, text: string): string {
  const p: Record<string, unknown> = { ...(params && typeof params === 'object' && !Array.isArray(params) ? (params as Record<string, unknown>) : {}) }
  if (Array.isArray(p.items)) {
    const items = (p.items as unknown[]).map(String).join('、')
    const more = typeof p.more === 'number' && p.more > 0 ? p.more : 0
    p.items = more && words.te('profile.nbMore') ? words.t('profile.nbMore', { items, n: more + (p.items as unknown[]).length }) : items
  }
  return codeWord('profile.nbReasons', typeof code === 'string' ? code : null, p, text)
}

// Gap is one of an account's coverage gap_codes (account.Gap).
export interface Gap { code: string; params?: Record<string, string> }

// gapWord is an account's coverage gap in words (accounts.gapCodes, the
// role and level named as the pages name them), else the API's sentence.
export function gapWord(text: string, gap: Gap | null | undefined): string {
  if (!gap) return text
  const p: Record<string, string> = { ...(gap.params || {}) }
  if (p.role) p.role = wordFor('common.values.buyingRole', p.role)
  if (p.level) p.level = wordFor('common.values.orgLevel', p.level)
  return codeWord('accounts.gapCodes', gap.code, p, text)
}

// IcpReason is one of an account's icp_reasons (account.Reason).
export interface IcpReason { factor: string; points: number; text: string; code?: string; params?: Record<string, unknown> }

// icpReasonWord is an ICP reason in words (accounts.reasonCodes; the
// committee's gaps said by gapWord), else the API's sentence.
export function icpReasonWord(r: IcpReason): string {
  const p: Record<string, unknown> = { ...(r.params || {}) }
  if (Array.isArray(p.gaps)) p.gaps = (p.gaps as Gap[]).map((g) => gapWord(g.code, g)).join('；')
  return codeWord('accounts.reasonCodes', r.code, p, r.text)
}

// FlagCode is one of an account flag's codes (account.FlagCode).
export interface FlagCode { code: string; params?: Record<string, unknown> }

// flagWord is a flag reason in words (accounts.flagCodes; revenue as
// money), else the API's sentence.
export function flagWord(text: string, c: FlagCode | null | undefined): string {
  if (!c) return text
  const p: Record<string, unknown> = { ...(c.params || {}) }
  if (typeof p.revenue === 'number') p.revenue = money(p.revenue)
  else if (p.revenue === null || p.revenue === undefined) p.revenue = '—'
  return codeWord('accounts.flagCodes', c.code, p, text)
}
