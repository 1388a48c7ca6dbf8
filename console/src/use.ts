import { ref, shallowRef, onMounted, onBeforeUnmount, type Ref } from 'vue'
import { asApiError, type ApiError } from './api'

// useLoad runs an API call for a part of a page and keeps its data, error
// and loading state, so each part fails (and says so) on its own.
export function useLoad<T>(fn: () => Promise<T>, opts: { immediate?: boolean; every?: number } = {}) {
  const data = shallowRef<T | null>(null) as Ref<T | null>
  const error = ref<ApiError | null>(null)
  const loading = ref(false)
  let seq = 0
  async function load() {
    const mine = ++seq
    loading.value = true
    try {
      const v = await fn()
      if (mine !== seq) return
      data.value = v
      error.value = null
    } catch (e) {
      if (mine !== seq) return
      error.value = asApiError(e)
    } finally {
      if (mine === seq) loading.value = false
    }
  }
  let timer: ReturnType<typeof setInterval> | undefined
  onMounted(() => {
    if (opts.immediate !== false) load()
    if (opts.every) {
      timer = setInterval(() => {
        // A failed part stops polling until retried (no error storms).
        if (!error.value && document.visibilityState === 'visible') load()
      }, opts.every)
    }
  })
  onBeforeUnmount(() => timer && clearInterval(timer))
  return { data, error, loading, load }
}
