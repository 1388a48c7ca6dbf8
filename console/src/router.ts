import { createRouter, createWebHistory, START_LOCATION, type RouteRecordRaw } from 'vue-router'
import { session, restore, pageSessionDone } from './session'

// One lazy route per page: each page is its own chunk, loaded on first
// visit. Pages 4–6 (segments, tags, analytics) keep their routes here and
// replace only their page files.
const routes: RouteRecordRaw[] = [
  { path: '/signin', name: 'signin', component: () => import('./pages/SignIn.vue'), meta: { public: true, bare: true } },
  { path: '/', name: 'overview', component: () => import('./pages/Overview.vue'), meta: { menu: 'overview' } },
  { path: '/search', name: 'search', component: () => import('./pages/Search.vue'), meta: { menu: 'search' } },
  { path: '/profiles', name: 'profiles', component: () => import('./pages/Search.vue'), meta: { menu: 'search', list: true } },
  // fetch: the call the page makes first (Profile.vue takes it with
  // early()), its parameters named as in the path. The server preloads it
  // with a signed-in browser's page (routes.json, written from this line)
  // and main.ts asks for it on a first load, beside the page's chunks.
  { path: '/profiles/:id', name: 'profile', component: () => import('./pages/Profile.vue'), meta: { menu: 'search', fetch: '/v1/profiles/:id/view?events=50' } },
  { path: '/segments/:id?', name: 'segments', component: () => import('./pages/Segments.vue'), meta: { menu: 'segments' } },
  { path: '/tags', name: 'tags', component: () => import('./pages/Tags.vue'), meta: { menu: 'tags' } },
  { path: '/analytics', name: 'analytics', component: () => import('./pages/Analytics.vue'), meta: { menu: 'analytics' } },
  { path: '/data', name: 'data', component: () => import('./pages/Data.vue'), meta: { menu: 'data' } },
  // customer business map (issue 14)
  { path: '/map', name: 'map', component: () => import('./pages/Map.vue'), meta: { menu: 'map' } },
  // insight (issue 14 §4): reached from the segments menu
  { path: '/insight/:id?', name: 'insight', component: () => import('./pages/Insight.vue'), meta: { menu: 'segments' } },
  // accounts (issue 16): the ICP ranking and one account's portrait
  { path: '/accounts', name: 'accounts', component: () => import('./pages/Accounts.vue'), meta: { menu: 'accounts' } },
  { path: '/accounts/:id', name: 'account', component: () => import('./pages/Account.vue'), meta: { menu: 'accounts' } },
  // privacy-access: keys and roles, the audit log
  { path: '/keys', name: 'keys', component: () => import('./pages/Keys.vue'), meta: { menu: 'keys' } },
  { path: '/audit', name: 'audit', component: () => import('./pages/Audit.vue'), meta: { menu: 'audit' } },
  { path: '/:rest(.*)*', name: 'notfound', component: () => import('./pages/NotFound.vue') },
]

export const router = createRouter({
  history: createWebHistory(),
  routes,
  // Not on the first navigation: the page is at the top already, and
  // scrolling there forced a layout in the middle of the first render
  // (10-25 ms of a cold load's main thread, traced).
  scrollBehavior: (_to, from) => (from === START_LOCATION ? false : { top: 0 }),
})

// Every page but sign-in needs a session; the page asked for is kept in
// ?next= and opened after sign-in.
router.beforeEach(async (to) => {
  if (to.meta.public) return true
  if (!session.principal) {
    let ok = false
    try {
      ok = await restore()
    } catch {
      ok = false
    }
    if (!ok) return { name: 'signin', query: { next: to.fullPath } }
  }
  return true
})

// The session the page came with answers the first navigation only.
router.isReady().then(pageSessionDone, pageSessionDone)

// toSignIn is called on a 401 from any request: the session has ended.
export function toSignIn(reason: string) {
  const cur = router.currentRoute.value
  if (cur.name === 'signin') return
  router.replace({ name: 'signin', query: { next: cur.fullPath, reason } })
}
