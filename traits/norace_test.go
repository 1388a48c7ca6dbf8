//go:build !race

package traits_test

const raceEnabled = false
