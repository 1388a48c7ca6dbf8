export default {
  product: 'Portrait',
  menu: {
    overview: 'Overview',
    search: 'Find customers',
    profiles: 'Customer list',
    segments: 'Segments',
    accounts: 'Accounts', // accounts (issue 16)
    tags: 'Tags & traits',
    analytics: 'Analytics',
    data: 'Data',
    map: 'Business map', // customer business map (issue 14)
    // privacy-access
    keys: 'Keys',
    insight: 'Audience insight', // the insight page's title (issue 14 §4)
    audit: 'Audit log',
  },
  language: 'Language',
  signOut: 'Sign out',
  signedInAs: 'Signed in as {name} ({role})',
  loading: 'Loading…',
  retry: 'Retry',
  none: 'None',
  empty: 'No data',
  total: '{n} in all',
  missingEndpoint: 'This server does not offer {path} yet, so this part is unavailable.',
  errorTitle: 'The request failed',
  notFound: 'No such page',
  backHome: 'Back to the overview',
  skipToContent: 'Skip to main content',
  mainNav: 'Main navigation',
  figures: 'Figures',
  chart: 'Chart',
  yes: 'Yes',
  no: 'No',
  count: 'Count',
  share: 'Share',
  stage: {
    prospect: 'Prospect',
    new: 'New',
    repeat: 'Repeat',
    loyal: 'Loyal',
    at_risk: 'At risk',
    churned: 'Churned',
  },
  // Classification levels (issue 15), the same words on every page and as
  // the API's level_zh: console/levels_test.go holds them to it.
  levels: { public: 'Public', internal: 'Internal', confidential: 'Confidential', secret: 'Secret' },
  dim: {
    basic: 'Demographics',
    behaviour: 'Behaviour',
    needs: 'Needs & preferences',
    feedback: 'Feedback',
    value: 'Value',
    risk: 'Risk',
    other: 'Other',
  },
}
