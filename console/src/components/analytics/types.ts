// Answers of the analytics endpoints, as the console/API contract fixes them.
export interface Group {
  key: string
  label: string
  count: number
  share: number
  sum?: number | null
  mean?: number | null
  from?: number | null
  to?: number | null
}
export interface Breakdown {
  by: string
  segment: string | null
  metric?: string
  // present when the metric is above the caller's clearance: sums and
  // means are left out (issue 15)
  metric_masked?: string
  total: number
  groups: Group[]
  other: { count: number; share: number; sum?: number | null; mean?: number | null } | null
  missing: { count: number; share: number } | null
  took_ms: number
}
export interface Run {
  id: string
  kind: string
  status: string
  params: Record<string, unknown> | null
  metrics?: Record<string, any>
  error?: string
  profiles_written: number
  started_at: string
  finished_at?: string
  duration_ms: number
}
