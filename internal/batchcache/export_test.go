package batchcache

// RawLen is the size of c's map, swept or not.
func RawLen[P, S any](c *Cache[P, S]) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
