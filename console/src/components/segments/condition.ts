// The builder's model of a segment definition, and its two renderings: the
// JSON condition tree POST /v1/segments accepts (segment.Condition) and the
// equivalent expression (docs/segments.md), shown beside it. Both compile to
// the same plan on the server; the server, not this file, decides validity.

export type TraitType = 'string' | 'number' | 'boolean' | 'time' | 'list' | string

export type TraitOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'between' | 'starts_with' | 'contains' | 'exists' | 'not_exists'
export type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>='

export interface Rule {
  key: number
  kind: 'trait' | 'tag' | 'identifier' | 'event' | 'did' | 'region' | 'group'
  negate: boolean
  // trait
  trait?: string
  op?: TraitOp
  value?: string // as typed; converted with the trait's type
  value2?: string // between: high
  // tag / identifier
  name?: string
  // event
  event?: string
  metric?: 'count' | 'sum' | 'days_since'
  window?: string
  whereOp?: CmpOp | ''
  whereValue?: string
  // did / not_did
  did?: string
  notDid?: string
  // region
  province?: string
  city?: string
  // group
  mode?: 'all' | 'any'
  children?: Rule[]
}

export interface Condition {
  all?: Condition[]
  any?: Condition[]
  not?: Condition
  trait?: string
  tag?: string
  identifier?: string
  event?: string
  metric?: string
  window?: string
  where?: { op: string; value: unknown }
  did?: string
  not_did?: string
  region?: { province: string; city?: string }
  op?: string
  value?: unknown
}

let seq = 0
export const newKey = () => ++seq

export function newRule(kind: Rule['kind']): Rule {
  const r: Rule = { key: newKey(), kind, negate: false }
  switch (kind) {
    case 'trait':
      Object.assign(r, { trait: '', op: '==', value: '', value2: '' })
      break
    case 'event':
      Object.assign(r, { event: '', metric: 'count', window: '30d', whereOp: '', whereValue: '', op: '>=', value: '1' })
      break
    case 'did':
      Object.assign(r, { did: '', notDid: '', window: '7d' })
      break
    case 'region':
      Object.assign(r, { province: '', city: '' })
      break
    case 'group':
      Object.assign(r, { mode: 'all', children: [] })
      break
    default:
      r.name = ''
  }
  return r
}

export function emptyRoot(): Rule {
  return { key: newKey(), kind: 'group', negate: false, mode: 'all', children: [] }
}

// typed converts what the user typed into the literal the trait's type
// needs: the API refuses the string "30" against a number trait.
function typed(v: string | undefined, type: TraitType): unknown {
  const s = (v ?? '').trim()
  if (type === 'number') {
    const n = Number(s)
    return s !== '' && Number.isFinite(n) ? n : s
  }
  if (type === 'boolean') {
    if (s === 'true') return true
    if (s === 'false') return false
  }
  return s
}

function list(v: string | undefined, type: TraitType): unknown[] {
  return (v ?? '')
    .split(/[,，]/)
    .map((x) => x.trim())
    .filter((x) => x !== '')
    .map((x) => typed(x, type))
}

function num(v: string | undefined): unknown {
  const s = (v ?? '').trim()
  const n = Number(s)
  return s !== '' && Number.isFinite(n) ? n : s
}

// isBlank: a rule the user has added but not filled in yet is left out of
// the tree (so the count does not flicker to an error while typing).
export function isBlank(r: Rule): boolean {
  switch (r.kind) {
    case 'trait':
      return !r.trait
    case 'tag':
    case 'identifier':
      return !r.name
    case 'event':
      return !r.event
    case 'did':
      return !r.did
    case 'region':
      return !r.province
    case 'group':
      return (r.children || []).every(isBlank)
  }
}

export function toCondition(r: Rule, types: Record<string, TraitType>): Condition | null {
  if (isBlank(r)) return null
  let c: Condition
  switch (r.kind) {
    case 'group': {
      const kids = (r.children || []).map((k) => toCondition(k, types)).filter((k): k is Condition => k !== null)
      c = r.mode === 'any' ? { any: kids } : { all: kids }
      break
    }
    case 'trait': {
      const type = types[r.trait!] || 'string'
      c = { trait: r.trait, op: r.op }
      if (r.op === 'in') c.value = list(r.value, type)
      else if (r.op === 'between') c.value = [num(r.value), num(r.value2)]
      else if (r.op === 'starts_with') c.value = (r.value ?? '').trim()
      else if (r.op === 'contains') c.value = typed(r.value, 'string')
      else if (r.op !== 'exists' && r.op !== 'not_exists') c.value = typed(r.value, type)
      break
    }
    case 'tag':
      c = { tag: r.name }
      break
    case 'identifier':
      c = { identifier: r.name }
      break
    case 'event':
      c = { event: r.event, metric: r.metric, op: r.op, value: num(r.value) }
      if (r.window && r.metric !== 'days_since') c.window = r.window
      if (r.whereOp && r.metric !== 'days_since') c.where = { op: r.whereOp, value: num(r.whereValue) }
      break
    case 'did':
      c = { did: r.did, not_did: r.notDid, window: r.window }
      break
    case 'region':
      c = { region: r.city ? { province: r.province!, city: r.city } : { province: r.province! } }
      break
  }
  return r.negate ? { not: c } : c
}

const q = (s: unknown) => JSON.stringify(s)

// toExpression renders the same definition in the expression language, so
// that an analyst can read it, paste it into the API or into a tag.
export function toExpression(r: Rule, types: Record<string, TraitType>, top = true): string {
  if (isBlank(r)) return ''
  let s: string
  switch (r.kind) {
    case 'group': {
      const kids = (r.children || []).filter((k) => !isBlank(k)).map((k) => toExpression(k, types, false))
      s = kids.join(r.mode === 'any' ? ' || ' : ' && ')
      // A negated group gets its parentheses from the negation below.
      if (kids.length > 1 && !top && !r.negate) s = `(${s})`
      break
    }
    case 'trait': {
      const type = types[r.trait!] || 'string'
      const t = `traits.${r.trait}`
      switch (r.op) {
        case 'in':
          s = `${t} in [${list(r.value, type).map(q).join(', ')}]`
          break
        case 'between':
          s = `${t} in ${num(r.value)}..${num(r.value2)}`
          break
        case 'starts_with':
          s = `${t} startsWith ${q((r.value ?? '').trim())}`
          break
        case 'contains':
          s = `${q(typed(r.value, 'string'))} in ${t}`
          break
        case 'exists':
          s = `${t} != nil`
          break
        case 'not_exists':
          s = `${t} == nil`
          break
        default:
          s = `${t} ${r.op} ${q(typed(r.value, type))}`
      }
      break
    }
    case 'tag':
      s = `${q(r.name)} in tags`
      break
    case 'identifier':
      s = `${q(r.name)} in identifiers`
      break
    case 'event': {
      if (r.metric === 'days_since') {
        s = `days_since_event(${q(r.event)}) ${r.op} ${num(r.value)}`
        break
      }
      const fn = r.metric === 'sum' ? 'event_sum' : 'event_count'
      const args = [q(r.event)]
      if (r.window || r.whereOp) args.push(q(r.window || ''))
      if (r.whereOp) args.push(`amount ${r.whereOp} ${num(r.whereValue)}`)
      s = `${fn}(${args.join(', ')}) ${r.op} ${num(r.value)}`
      break
    }
    case 'did':
      s = `did_but_not(${q(r.did)}, ${q(r.notDid)}, ${q(r.window)})`
      break
    case 'region':
      s = r.city ? `in_region(${q(r.province)}, ${q(r.city)})` : `in_region(${q(r.province)})`
      break
  }
  return r.negate ? `!(${s})` : s
}

const str = (v: unknown) => (v === undefined || v === null ? '' : String(v))

// fromCondition reads a saved segment's tree back into the builder. A tree
// it cannot show (none today) comes back as null and the page says so.
export function fromCondition(c: Condition | undefined | null, top = true): Rule | null {
  if (!c) return null
  if (c.not) {
    const k = fromCondition(c.not, false)
    if (!k) return null
    if (k.negate) return null
    k.negate = true
    return wrapTop(k, top)
  }
  let r: Rule
  if (c.all || c.any) {
    const kids = (c.all || c.any || []).map((k) => fromCondition(k, false))
    if (kids.some((k) => k === null)) return null
    r = { key: newKey(), kind: 'group', negate: false, mode: c.any ? 'any' : 'all', children: kids as Rule[] }
    return r
  } else if (c.trait) {
    r = { ...newRule('trait'), trait: c.trait, op: (c.op as TraitOp) || '==' }
    const map: Record<string, TraitOp> = { eq: '==', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=', startsWith: 'starts_with', prefix: 'starts_with' }
    if (map[r.op!]) r.op = map[r.op!]
    if (Array.isArray(c.value)) {
      if (r.op === 'between') {
        r.value = str(c.value[0])
        r.value2 = str(c.value[1])
      } else r.value = c.value.map(str).join(', ')
    } else r.value = str(c.value)
  } else if (c.tag) {
    r = { ...newRule('tag'), name: c.tag }
  } else if (c.identifier) {
    r = { ...newRule('identifier'), name: c.identifier }
  } else if (c.event) {
    r = { ...newRule('event'), event: c.event, metric: (c.metric as Rule['metric']) || 'count', window: c.window || '', op: (c.op as TraitOp) || '>=', value: str(c.value) }
    if (c.where) {
      r.whereOp = c.where.op as CmpOp
      r.whereValue = str(c.where.value)
    }
  } else if (c.did) {
    r = { ...newRule('did'), did: c.did, notDid: c.not_did || '', window: c.window || '' }
  } else if (c.region) {
    r = { ...newRule('region'), province: c.region.province, city: c.region.city || '' }
  } else return null
  return wrapTop(r, top)
}

// The builder's root is always a group.
function wrapTop(r: Rule, top: boolean): Rule {
  if (!top || r.kind === 'group') return r
  return { key: newKey(), kind: 'group', negate: false, mode: 'all', children: [r] }
}

// One clause of GET /v1/segments/{id}/explain/{profile}.
export interface Explanation {
  clause: string
  matched: boolean
  value?: unknown
  reason?: string
  children?: Explanation[]
}
