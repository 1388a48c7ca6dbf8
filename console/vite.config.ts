import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'
import { preloadRoutes } from './preload-routes'
import { pageMessages } from './page-messages'

// The build must be deterministic: scripts/test rebuilds and compares the
// bytes with the committed dist/, so nothing here may depend on time or
// on the machine (no sourcemaps with absolute paths, no generated .d.ts).
export default defineConfig({
  plugins: [
    vue(),
    // Element Plus components (and their CSS) imported where used, so a
    // page loads only what it shows (first-load budget: 1 MB).
    Components({
      resolvers: [ElementPlusResolver({ importStyle: 'css' })],
      dts: false,
    }),
    // Each page's messages in the page's chunk, not all of them in the entry.
    pageMessages(),
    preloadRoutes(),
  ],
  define: {
    __VUE_OPTIONS_API__: 'true',
    __VUE_PROD_DEVTOOLS__: 'false',
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false',
    __VUE_I18N_FULL_INSTALL__: 'false',
    __VUE_I18N_LEGACY_API__: 'false',
    __INTLIFY_PROD_DEVTOOLS__: 'false',
  },
  server: {
    // `npm run dev` against a running `portrait demo` (PORTRAIT_URL).
    proxy: {
      '/v1': process.env.PORTRAIT_URL || 'http://127.0.0.1:8080',
      '/console/signin': process.env.PORTRAIT_URL || 'http://127.0.0.1:8080',
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    // One stylesheet (about 30 KB gzipped): a page then waits for one CSS
    // request instead of one per Element Plus component.
    cssCodeSplit: false,
    target: 'es2022',
    chunkSizeWarningLimit: 900,
    rollupOptions: {
      output: {
        // Tiny shared chunks (a 29-byte helper, 400-byte string tables)
        // are merged into a chunk that imports them anyway: each was a
        // request of its own on a cold load. Rollup merges only where no
        // page then loads code it did not load before.
        experimentalMinChunkSize: 2048,
        // Stable chunk names: the vendor code that every page shares is
        // cached once; ECharts stays out of it (loaded with the first chart).
        manualChunks(id) {
          if (id.includes('node_modules/echarts') || id.includes('node_modules/zrender') || id.includes('node_modules/vue-echarts')) return 'charts'
          if (id.includes('node_modules/vue') || id.includes('node_modules/@vue') || id.includes('node_modules/@intlify')) return 'vue'
        },
      },
    },
  },
})
