import { reactive } from 'vue'
import { request, setCsrfToken, setUnauthorizedHandler, ApiError } from './api'

// The principal the server says this session acts for: its role, the
// scopes the role holds ("profiles:read", "keys:write") and its clearance.
// Pages hide what the role cannot do (can); they never decide access
// themselves: the API does, and masks what the clearance may not see.
export interface Principal {
  name: string
  kind: string
  role: string
  clearance: string
  scopes?: string[]
}

// can reports whether the signed-in principal holds scope (family:access).
export function can(scope: string): boolean {
  return !!session.principal?.scopes?.includes(scope)
}

interface SessionAnswer {
  principal: Principal
  csrf_token: string
  expires_at: string
}

export const session = reactive({
  principal: null as Principal | null,
  expiresAt: '',
  checked: false,
})

// ended: the session this page had was refused by the server; requests
// in flight with it fail one after the other, and all of them must say
// "expired" (the first one forgets the principal, so the others cannot
// tell by it and said "sign in", replacing the first one's redirect).
let ended = false

function accept(s: SessionAnswer) {
  ended = false
  session.principal = s.principal
  session.expiresAt = s.expires_at
  session.checked = true
  setCsrfToken(s.csrf_token)
}

export function forget() {
  session.principal = null
  session.expiresAt = ''
  session.checked = true
  setCsrfToken('')
}

// restore asks the server whether the browser's cookie is a live session;
// concurrent callers share one request (main.ts starts it at once, the
// router's guard awaits it).
let pending: Promise<boolean> | null = null
export function restore(): Promise<boolean> {
  if (fromPage !== undefined) return Promise.resolve(fromPage)
  if (!pending) pending = ask().finally(() => (pending = null))
  return pending
}

// The server puts what GET /v1/session would answer into the page it
// serves (a JSON data block, null when not signed in): the first load then
// renders without that round trip. It answers restore() until the first
// navigation has ended (pageSessionDone, called by the router); a page
// served without it (an older server, `npm run dev`) asks as before.
let fromPage: boolean | undefined
{
  const el = document.getElementById('portrait-session')
  if (el) {
    try {
      const s = JSON.parse(el.textContent || '') as SessionAnswer | null
      if (s && s.principal && s.csrf_token) {
        accept(s)
        fromPage = true
      } else if (s === null) {
        forget()
        fromPage = false
      }
    } catch {
      fromPage = undefined
    }
    el.remove()
  }
}
export function pageSessionDone() {
  fromPage = undefined
}
async function ask(): Promise<boolean> {
  try {
    accept(await request<SessionAnswer>('GET', '/v1/session', { quiet401: true }))
    return true
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      forget()
      return false
    }
    throw e
  }
}

export async function signIn(token: string) {
  accept(await request<SessionAnswer>('POST', '/v1/session', { body: { token }, quiet401: true }))
}

export async function signOut() {
  try {
    await request('DELETE', '/v1/session', { quiet401: true })
  } finally {
    forget()
  }
}

// installExpiry sends the user to sign-in on any 401, remembering the page.
export function installExpiry(toSignIn: (reason: string) => void) {
  setUnauthorizedHandler(() => {
    if (session.principal !== null) ended = true
    forget()
    toSignIn(ended ? 'expired' : 'signin')
  })
}
