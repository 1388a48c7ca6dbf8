export default {
  title: 'Sign in to Portrait',
  token: 'API token',
  tokenHint: 'An admin token (pat_…), printed by the first start of portrait serve or set by PORTRAIT_ADMIN_TOKEN',
  submit: 'Sign in',
  expired: 'Your session has expired. Sign in again to return to the page you were on.',
  link: 'This sign-in link was used or has expired. Sign in with a token, or run portrait demo again for a new link.',
  throttled: 'Too many failed sign-ins; try again later.',
  demoHint: 'portrait demo prints a one-time sign-in link in the terminal.',
}
