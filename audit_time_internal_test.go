package approval

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestAppendTimeMatchesFormat: the hashed form of a time is what
// AppendFormat writes in timeLayout, for any time, in any zone.
func TestAppendTimeMatchesFormat(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 40_000 {
		var tm time.Time
		switch i % 4 {
		case 0:
			tm = time.Unix(rnd.Int64N(1<<36)-1<<35, rnd.Int64N(1e9))
		case 1:
			tm = time.Date(rnd.IntN(10000), time.Month(rnd.IntN(12)+1), rnd.IntN(28)+1, rnd.IntN(24), rnd.IntN(60), rnd.IntN(60),
				rnd.IntN(1e9), time.FixedZone("x", rnd.IntN(20000)-10000))
		case 2:
			tm = time.Date(rnd.IntN(40000)-20000, 1, 1, 0, 0, 0, rnd.IntN(1e9), time.UTC)
		default:
			tm = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC).Add(time.Duration(rnd.IntN(100)-50) * time.Hour)
		}
		want := `"` + tm.UTC().Format(timeLayout) + `"`
		if got := string(appendTime(nil, tm)); got != want {
			t.Fatalf("%v: %s, want %s", tm, got, want)
		}
	}
}
