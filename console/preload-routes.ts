import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Plugin } from 'vite'

// preloadRoutes writes dist/routes.json: for each route of src/router.ts,
// its path pattern and the files its page needs (the page's chunk, the
// chunks it imports statically, transitively, and their CSS), minus those
// index.html already loads. The server (http/console.go) puts them into
// index.html as <link rel="modulepreload">, so that a first load fetches
// the page's chunks with the entry instead of a round after the entry has
// run and the router has asked for them.
//
// The routes are read from router.ts itself (one route a line, `path:
// '...'` then `import('./pages/X.vue')`), so the list cannot drift from
// the router; the build fails when a lazy import is not matched.
export function preloadRoutes(): Plugin {
  return {
    name: 'portrait-preload-routes',
    apply: 'build',
    // After Vite's CSS plugin has removed the chunks that were only CSS.
    enforce: 'post',
    generateBundle(_opts, bundle) {
      const src = readFileSync(resolve(__dirname, 'src/router.ts'), 'utf8')
      const re = /path:\s*'([^']+)'[^\n]*?import\('\.\/(pages\/[^']+)'\)/g
      // fetch: the page's first API call (meta.fetch on the same line),
      // which the server preloads with a signed-in browser's page.
      const pairs = [...src.matchAll(re)].map((m) => ({ path: m[1], page: m[2], fetch: /fetch:\s*'([^']+)'/.exec(m[0] + src.slice(m.index! + m[0].length).split('\n')[0])?.[1] }))
      const lazy = (src.match(/import\('\.\//g) || []).length
      if (pairs.length !== lazy) {
        this.error(`preload-routes: ${pairs.length} routes matched in src/router.ts, ${lazy} lazy imports`)
      }
      const chunks = Object.values(bundle).filter((c) => c.type === 'chunk')
      const entry = chunks.find((c) => c.isEntry)
      if (!entry) this.error('preload-routes: no entry chunk')
      // What index.html loads already: the entry, its static imports, the CSS.
      const have = new Set<string>()
      const walk = (name: string, out: string[]) => {
        const c = bundle[name]
        if (!c || c.type !== 'chunk' || have.has(name) || out.includes(name)) return
        out.push(name)
        for (const i of c.imports) walk(i, out)
        for (const css of c.viteMetadata?.importedCss ?? []) if (!have.has(css) && !out.includes(css)) out.push(css)
      }
      const base: string[] = []
      walk(entry!.fileName, base)
      base.forEach((f) => have.add(f))
      const routes = pairs
        // The catch-all (`/:rest(.*)*`) is left out: an unknown path gets
        // the shell alone.
        .filter((p) => !p.path.includes('('))
        .map((p) => {
          // The page's own chunk, or the chunk Rollup merged it into.
          const page =
            chunks.find((c) => c.facadeModuleId?.endsWith('/src/' + p.page)) ??
            chunks.find((c) => c.moduleIds.some((id) => id.endsWith('/src/' + p.page)))
          if (!page) this.error(`preload-routes: no chunk for ${p.page}`)
          const files: string[] = []
          walk(page!.fileName, files)
          return p.fetch ? { path: p.path, files, fetch: p.fetch } : { path: p.path, files }
        })
      this.emitFile({ type: 'asset', fileName: 'routes.json', source: JSON.stringify(routes, null, 1) + '\n' })
    },
  }
}
