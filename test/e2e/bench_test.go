package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/test/s3server"
	"github.com/keyguard-dev/keyguard/test/stack"
)

// BenchmarkTickFleet measures one scheduler tick of a fleet of 50 databases through the whole
// local stack: Event Notifications delivery, Key Protect polls (2 keys), 50 state CAS round trips
// against versitygw, and the backup starts and completions it causes. It reports the tick's
// median and worst latency (the handler must answer well within Event Notifications' 10 s).
func BenchmarkTickFleet(b *testing.B) {
	const dbs = 50
	var y strings.Builder
	y.WriteString("version: 1\ndefaults: {executor: simulated}\ndatabases:\n")
	for i := range dbs {
		k := key
		if i%2 == 1 {
			k = strings.Replace(key, "b001", "b002", 1)
		}
		fmt.Fprintf(&y, "  - name: db%02d\n    instance: db2inst1@host%02d\n    key_crn: %s\n    schedules: {full: \"0 2 * * 0\", incremental: \"0 2 * * 1-6\", delta: \"%d * * * *\"}\n", i, i, k, i%60)
	}
	fleet, err := stack.LoadFleet([]byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	bin, err := s3server.FindBinary()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	st, err := stack.Start(ctx, stack.Options{Versitygw: bin, Fleet: fleet, Start: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		if err := st.Advance(ctx, 15*time.Minute); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := st.Tick(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms/tick")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms/tick")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000/dbs, "p50-ms/db")
}
