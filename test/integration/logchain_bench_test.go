package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/logchain"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/test/s3server"
)

// BenchmarkLogChainCheck10000 is the figure of the log chain check over 10,000 archived log
// files of a DB2REMOTE archive in COS (versitygw through the IBM COS SDK): listing them with
// logchain.Objects, parsing every name and verifying the chain, beside its floor, the raw
// listing of the same 10,000 objects (objstore List). It reports both in ms and their ratio.
// Run by make bench: go test -run '^$' -bench LogChainCheck10000 ./test/integration/
func BenchmarkLogChainCheck10000(b *testing.B) {
	const n = 10_000
	ctx := context.Background()
	srv := s3server.Start(b)
	objs := objstore.NewCOS(srv.Client(b), srv.Bucket, "bench")
	prefix := "db2logs/db2inst1/SALES/"
	keys := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	t0 := time.Now()
	for range 32 {
		wg.Go(func() {
			for i := range keys {
				key := fmt.Sprintf("%sNODE0000/LOGSTREAM0000/C0000000/%s", prefix, logchain.Name(100+i))
				if _, err := objs.Put(ctx, key, []byte("log"), objstore.Cond{}); err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		keys <- i
	}
	close(keys)
	wg.Wait()
	if failed != nil {
		b.Fatal(failed)
	}
	b.Logf("setup: %d archived log objects written in %s", n, time.Since(t0).Round(time.Millisecond))
	l := logchain.Objects{Store: objs, Prefix: prefix}
	need := logchain.Need{From: 100, FirstActive: 100 + n, Chain: -1}
	var raw, check time.Duration
	for b.Loop() {
		t0 := time.Now()
		infos, err := objs.List(ctx, prefix)
		if err != nil || len(infos) != n {
			b.Fatalf("raw listing: %d objects, %v", len(infos), err)
		}
		t1 := time.Now()
		r, err := logchain.Check(ctx, l, need, logchain.Options{Database: "sales", Now: t1})
		if err != nil || r.Files != n || r.Broken {
			b.Fatalf("check: %+v %v", r, err)
		}
		check += time.Since(t1)
		raw += t1.Sub(t0)
	}
	b.ReportMetric(float64(check.Microseconds())/float64(b.N)/1000, "check-ms/op")
	b.ReportMetric(float64(raw.Microseconds())/float64(b.N)/1000, "raw-list-ms/op")
	b.ReportMetric(float64(check)/float64(raw), "check/raw")
}
