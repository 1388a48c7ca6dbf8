import { i18n } from './i18n'

// The global composer is typed by its messages; a key made at run time
// needs it as a plain lookup (else TypeScript's instantiation runs away).
const words = i18n.global as unknown as { t: (key: string) => string; te: (key: string) => boolean }

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
