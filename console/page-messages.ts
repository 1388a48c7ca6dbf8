import { readFileSync, existsSync, readdirSync, statSync } from 'node:fs'
import { resolve, dirname, join, basename } from 'node:path'
import type { Plugin } from 'vite'

// pageMessages gives each page's chunk its own messages. The entry holds
// only `common` (the shell's words); a page module (src/pages/X.vue) gets,
// at its top, imports of the locale files of the namespaces it and the
// components it uses write (`t('profile.…')` → locales/<lang>/profile.ts,
// both languages) and a call of i18n.ts's addMessages. The page's messages
// therefore arrive in the page's own chunk (no request of their own) and
// are registered when the chunk is evaluated, before the page renders; a
// language switch finds the other language already there.
//
// The namespaces are read from the sources, so there is no list to keep:
// the page file, the files it imports (static or dynamic, relative paths)
// and the components of src/components it names as tags (which
// unplugin-vue-components imports without an import statement), and the
// same for each of those, transitively.
const src = resolve(__dirname, 'src')
const nsRe = /(?:\bt|\bte|\btm|\$t)\(\s*['`"]([a-zA-Z]+)\./g
const importRe = /(?:import\s*(?:[^'"`;]*?from\s*)?|import\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g

function componentFiles(): Map<string, string> {
  // name (PascalCase and kebab-case) → file, for tags without imports
  const out = new Map<string, string>()
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f)
      if (statSync(p).isDirectory()) walk(p)
      else if (f.endsWith('.vue')) {
        const name = basename(f, '.vue')
        out.set(name, p)
        out.set(name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase(), p)
      }
    }
  }
  walk(join(src, 'components'))
  return out
}

function resolveImport(from: string, spec: string): string | null {
  const p = resolve(dirname(from), spec)
  for (const c of [p, p + '.ts', p + '.vue', join(p, 'index.ts')]) {
    if (existsSync(c) && statSync(c).isFile()) return c
  }
  return null
}

// namespaces returns the message namespaces a page uses, but `common`
// (in the entry), sorted.
export function namespaces(page: string, components = componentFiles()): string[] {
  const seen = new Set<string>()
  const ns = new Set<string>()
  const stack = [page]
  while (stack.length) {
    const f = stack.pop()!
    if (seen.has(f)) continue
    seen.add(f)
    const code = readFileSync(f, 'utf8')
    for (const m of code.matchAll(nsRe)) ns.add(m[1])
    for (const m of code.matchAll(importRe)) {
      const r = resolveImport(f, m[1])
      if (r && !r.startsWith(join(src, 'locales')) && r !== join(src, 'i18n.ts')) stack.push(r)
    }
    if (f.endsWith('.vue')) {
      for (const m of code.matchAll(/<([A-Za-z][\w-]*)/g)) {
        const c = components.get(m[1])
        if (c) stack.push(c)
      }
    }
  }
  ns.delete('common')
  return [...ns].sort()
}

export function pageMessages(): Plugin {
  const langs = ['zh-CN', 'en']
  return {
    name: 'portrait-page-messages',
    // After @vitejs/plugin-vue has made the page's module JavaScript.
    enforce: 'post',
    transform(code, id) {
      const m = /\/src\/pages\/([A-Za-z]+)\.vue$/.exec(id)
      if (!m) return null
      const file = join(src, 'pages', m[1] + '.vue')
      const names = namespaces(file)
      const lines = [`import { addMessages as __addMessages } from ${JSON.stringify(join(src, 'i18n.ts'))}`]
      const calls: string[] = []
      names.forEach((n, i) => {
        const parts: string[] = []
        for (const [j, l] of langs.entries()) {
          const f = join(src, 'locales', l, n + '.ts')
          if (!existsSync(f)) this.error(`page-messages: ${m[1]}.vue uses t('${n}.…') but there is no ${f}`)
          lines.push(`import __m${i}_${j} from ${JSON.stringify(f)}`)
          parts.push(`${JSON.stringify(l)}: __m${i}_${j}`)
        }
        calls.push(`__addMessages(${JSON.stringify(n)}, { ${parts.join(', ')} })`)
      })
      if (!calls.length) return null
      return { code: lines.join('\n') + '\n' + calls.join('\n') + '\n' + code, map: null }
    },
  }
}
