// The console's one way to the server. Every value a page shows comes
// through here from the API (never around it), so the authorisation and
// masking the server applies hold for the console too.

export interface ErrorDetail {
  index?: number
  field?: string
  row?: number
  column?: string
  // code: a stable word for the reason (masked_value), which the console
  // says in its language (roles.ts apiErrorWords); reason is the English.
  code?: string
  reason: string
}

// ApiError carries the API's own error JSON ({"error":{code,message,details}})
// so pages show the server's message in place.
export class ApiError extends Error {
  status: number
  code: string
  details: ErrorDetail[]
  path: string
  constructor(status: number, code: string, message: string, details: ErrorDetail[] = [], path = '') {
    super(message)
    this.status = status
    this.code = code
    this.details = details
    this.path = path
  }
  // missingEndpoint: the server has no such route yet (an older binary):
  // the page says which feature is missing instead of failing.
  get missingEndpoint(): boolean {
    return this.status === 404 && this.message.startsWith('no route ')
  }
}

type Query = Record<string, string | number | boolean | undefined | null | (string | number)[]>

let csrfToken = ''
let onUnauthorized: ((err: ApiError) => void) | null = null

export function setCsrfToken(t: string) {
  csrfToken = t
}

// The session module registers what to do on a 401: forget the session and
// go to sign-in, remembering the page.
export function setUnauthorizedHandler(f: (err: ApiError) => void) {
  onUnauthorized = f
}

export function buildURL(path: string, query?: Query): string {
  const params = new URLSearchParams()
  if (query) {
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === '') continue
      if (Array.isArray(v)) params.set(k, v.join(','))
      else params.set(k, String(v))
    }
  }
  const qs = params.toString()
  return qs ? `${path}?${qs}` : path
}

async function toError(resp: Response, path: string): Promise<ApiError> {
  let code = 'internal'
  let message = `${resp.status} ${resp.statusText}`
  let details: ErrorDetail[] = []
  try {
    const body = await resp.json()
    if (body && body.error) {
      code = body.error.code || code
      message = body.error.message || message
      details = body.error.details || []
    }
  } catch {
    // Not JSON (a proxy's page): the status line is all there is.
  }
  return new ApiError(resp.status, code, message, details, path)
}

export interface RequestOptions {
  query?: Query
  body?: unknown
  signal?: AbortSignal
  // quiet401: a 401 is an answer, not a lost session (GET /v1/session).
  quiet401?: boolean
  // plain: no headers of the console's own, so that Chromium hands the
  // request a <link rel=preload as=fetch> of the same URL (it reuses a
  // preload only when the request headers are the same).
  plain?: boolean
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = opts.plain
    ? {}
    : {
        Accept: 'application/json',
        // Tells the server not to send WWW-Authenticate: Basic, which would
        // open the browser's own sign-in dialog.
        'X-Requested-With': 'portrait-console',
      }
  // Labels the server localises (tag names in breakdowns) follow the
  // console's language, which may differ from the browser's.
  if (document.documentElement.lang && !opts.plain) headers['Accept-Language'] = document.documentElement.lang
  let body: BodyInit | undefined
  if (opts.body !== undefined) {
    if (opts.body instanceof FormData || opts.body instanceof Blob) {
      body = opts.body
    } else {
      headers['Content-Type'] = 'application/json'
      body = JSON.stringify(opts.body)
    }
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken
  const url = buildURL(path, opts.query)
  let resp: Response
  try {
    resp = await fetch(url, { method, headers, body, credentials: 'same-origin', signal: opts.signal })
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e
    throw new ApiError(0, 'unavailable', `the server did not answer (${(e as Error).message})`, [], path)
  }
  if (!resp.ok) {
    const err = await toError(resp, path)
    if (err.status === 401 && !opts.quiet401 && onUnauthorized) onUnauthorized(err)
    throw err
  }
  if (resp.status === 204) return undefined as T
  const type = resp.headers.get('Content-Type') || ''
  if (type.includes('json')) return (await resp.json()) as T
  return (await resp.text()) as unknown as T
}

export const get = <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>('GET', path, { query, signal })
// A first load asks for the page's data while the app starts (main.ts,
// beside the session check and the page's chunk) rather than after both:
// prefetch starts the GET, early takes its answer once, or asks now.
const prefetched = new Map<string, Promise<unknown>>()
// plain: see RequestOptions (only for a signed-in page: a 401 without
// X-Requested-With would bring the browser's Basic dialog).
export function prefetch(path: string, query?: Query, plain = false) {
  const p = request('GET', path, { query, quiet401: true, plain })
  p.catch(() => {}) // taken by the page, or dropped (a redirect to sign-in)
  prefetched.set(buildURL(path, query), p)
}
export function early<T>(path: string, query?: Query): Promise<T> {
  const url = buildURL(path, query)
  const p = prefetched.get(url)
  if (!p) return get<T>(path, query)
  prefetched.delete(url)
  // Asked before the session was known: a 401 then only meant "not signed
  // in yet", and the page asks again now that it is.
  return (p as Promise<T>).catch((e) => {
    if (e instanceof ApiError && e.status === 401) return get<T>(path, query)
    throw e
  })
}
export const post = <T>(path: string, body?: unknown, query?: Query) => request<T>('POST', path, { body, query })
export const put = <T>(path: string, body?: unknown) => request<T>('PUT', path, { body })
export const del = <T>(path: string, query?: Query) => request<T>('DELETE', path, { query })

// upload sends a file with progress (fetch cannot report upload progress).
export function upload<T>(path: string, form: FormData, onProgress: (fraction: number) => void, query?: Query): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', buildURL(path, query))
    xhr.withCredentials = true
    xhr.setRequestHeader('Accept', 'application/json')
    xhr.setRequestHeader('X-Requested-With', 'portrait-console')
    if (csrfToken) xhr.setRequestHeader('X-CSRF-Token', csrfToken)
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total)
    }
    xhr.onerror = () => reject(new ApiError(0, 'unavailable', 'the upload did not reach the server', [], path))
    xhr.onload = () => {
      let parsed: any = null
      try {
        parsed = JSON.parse(xhr.responseText)
      } catch {
        parsed = null
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1)
        resolve(parsed as T)
        return
      }
      const e = parsed?.error
      const err = new ApiError(xhr.status, e?.code || 'internal', e?.message || `${xhr.status} ${xhr.statusText}`, e?.details || [], path)
      if (err.status === 401 && onUnauthorized) onUnauthorized(err)
      reject(err)
    }
    xhr.send(form)
  })
}

// download fetches a file (CSV/XLSX export) with the session and saves it.
export async function download(path: string, query: Query, filename: string) {
  const resp = await fetch(buildURL(path, query), { credentials: 'same-origin', headers: { 'X-Requested-With': 'portrait-console' } })
  if (!resp.ok) {
    const err = await toError(resp, path)
    if (err.status === 401 && onUnauthorized) onUnauthorized(err)
    throw err
  }
  const blob = await resp.blob()
  const a = document.createElement('a')
  a.href = URL.createObjectURL(blob)
  a.download = filename
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(a.href), 1000)
}

export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e
  return new ApiError(0, 'internal', (e as Error)?.message || String(e))
}
