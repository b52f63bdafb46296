//go:build race

package approvalotel_test

const raceEnabled = true
