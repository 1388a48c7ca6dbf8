package segment

// SetThresholds lowers the bucketing and high-cardinality thresholds so
// that small test data goes through every evaluation path; it returns a
// function restoring them.
func SetThresholds(bucketAt uint64, highCard int) func() {
	b, h := minBucketed, highCardinality
	minBucketed, highCardinality = bucketAt, highCard
	return func() { minBucketed, highCardinality = b, h }
}
