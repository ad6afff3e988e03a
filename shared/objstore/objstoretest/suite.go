package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// Option adjusts Run for a documented deviation of the store under test.
type Option func(*config)

type config struct {
	missingIfMatchPrecondition bool
	writers, rounds            int
}

// MissingIfMatchIsPrecondition accepts ErrPrecondition (besides ErrNotFound) for a put with
// If-Match on a missing key. gofakes3 v1.2.0 answers 412 there where S3 and versitygw answer
// 404; callers of objstore treat both as "re-read".
func MissingIfMatchIsPrecondition() Option {
	return func(c *config) { c.missingIfMatchPrecondition = true }
}

// Concurrency sets the writers and rounds of the concurrent conditional-writer tests (default
// 16 writers, 20 rounds).
func Concurrency(writers, rounds int) Option {
	return func(c *config) { c.writers, c.rounds = writers, rounds }
}

// Run runs the objstore.Store contract against stores made by newStore. Each subtest gets a new,
// empty store.
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store, opts ...Option) {
	cfg := config{writers: 16, rounds: 20}
	for _, o := range opts {
		o(&cfg)
	}
	ctx := context.Background()

	t.Run("GetMissing", func(t *testing.T) {
		s := newStore(t)
		_, _, err := s.Get(ctx, "nope/missing.json")
		wantIs(t, err, objstore.ErrNotFound)
	})

	t.Run("PutGetRoundTrip", func(t *testing.T) {
		s := newStore(t)
		cases := []struct {
			name, key string
			body      []byte
		}{
			{"json", "state/db1.json", []byte(`{"a":1}`)},
			{"empty", "empty", []byte{}},
			{"binary", "bin/x", []byte{0, 1, 2, 0xff, '\n', 0}},
			{"deep key", "catalog/db1/2024-01-02T03:04:05Z-full.json", bytes.Repeat([]byte("x"), 70000)},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				etag, err := s.Put(ctx, c.key, c.body, objstore.Cond{})
				must(t, err)
				if etag == "" {
					t.Fatal("Put returned an empty ETag")
				}
				got, getTag, err := s.Get(ctx, c.key)
				must(t, err)
				if !bytes.Equal(got, c.body) {
					t.Fatalf("Get body = %d bytes, want %d bytes", len(got), len(c.body))
				}
				if getTag != etag {
					t.Fatalf("Get ETag %q, Put returned %q", getTag, etag)
				}
			})
		}
	})

	t.Run("UnconditionalOverwrite", func(t *testing.T) {
		s := newStore(t)
		e1, err := s.Put(ctx, "k", []byte("one"), objstore.Cond{})
		must(t, err)
		e2, err := s.Put(ctx, "k", []byte("two"), objstore.Cond{})
		must(t, err)
		if e1 == e2 {
			t.Fatalf("ETag did not change with the content: %q", e1)
		}
		wantBody(t, s, "k", "two", e2)
	})

	t.Run("CreateIfAbsent", func(t *testing.T) {
		s := newStore(t)
		e1, err := s.Put(ctx, "c", []byte("first"), objstore.Cond{IfNoneMatch: true})
		must(t, err)
		_, err = s.Put(ctx, "c", []byte("second"), objstore.Cond{IfNoneMatch: true})
		wantIs(t, err, objstore.ErrPrecondition)
		wantBody(t, s, "c", "first", e1)
	})

	t.Run("IfMatch", func(t *testing.T) {
		s := newStore(t)
		e1, err := s.Put(ctx, "m", []byte("v1"), objstore.Cond{IfNoneMatch: true})
		must(t, err)
		e2, err := s.Put(ctx, "m", []byte("v2"), objstore.Cond{IfMatch: e1})
		must(t, err)
		if e2 == e1 {
			t.Fatalf("ETag unchanged after a conditional write: %q", e2)
		}
		_, err = s.Put(ctx, "m", []byte("v3-stale"), objstore.Cond{IfMatch: e1})
		wantIs(t, err, objstore.ErrPrecondition)
		wantBody(t, s, "m", "v2", e2)
		e3, err := s.Put(ctx, "m", []byte("v3"), objstore.Cond{IfMatch: e2})
		must(t, err)
		wantBody(t, s, "m", "v3", e3)
	})

	t.Run("IfMatchMissing", func(t *testing.T) {
		s := newStore(t)
		e1, err := s.Put(ctx, "gone", []byte("v1"), objstore.Cond{})
		must(t, err)
		must(t, s.Delete(ctx, "gone"))
		for _, key := range []string{"gone", "never"} {
			_, err = s.Put(ctx, key, []byte("v2"), objstore.Cond{IfMatch: e1})
			if cfg.missingIfMatchPrecondition && errors.Is(err, objstore.ErrPrecondition) {
				continue
			}
			wantIs(t, err, objstore.ErrNotFound)
		}
		_, _, err = s.Get(ctx, "gone")
		wantIs(t, err, objstore.ErrNotFound)
	})

	t.Run("BothConditionsRefused", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Put(ctx, "b", []byte("x"), objstore.Cond{IfMatch: `"abc"`, IfNoneMatch: true})
		if err == nil {
			t.Fatal("Put with IfMatch and IfNoneMatch succeeded")
		}
		_, _, err = s.Get(ctx, "b")
		wantIs(t, err, objstore.ErrNotFound)
	})

	t.Run("InvalidKey", func(t *testing.T) {
		s := newStore(t)
		for _, key := range []string{"", "/abs", "a/../b", "a\x00b", string(bytes.Repeat([]byte("k"), objstore.MaxKeyLen+1))} {
			_, err := s.Put(ctx, key, []byte("x"), objstore.Cond{})
			wantIs(t, err, objstore.ErrInvalidKey)
			_, _, err = s.Get(ctx, key)
			wantIs(t, err, objstore.ErrInvalidKey)
		}
	})

	t.Run("DeleteIdempotent", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Put(ctx, "d", []byte("x"), objstore.Cond{})
		must(t, err)
		must(t, s.Delete(ctx, "d"))
		_, _, err = s.Get(ctx, "d")
		wantIs(t, err, objstore.ErrNotFound)
		must(t, s.Delete(ctx, "d"))
		must(t, s.Delete(ctx, "never-existed"))
		// A deleted key can be created again with If-None-Match.
		_, err = s.Put(ctx, "d", []byte("again"), objstore.Cond{IfNoneMatch: true})
		must(t, err)
	})

	t.Run("DeleteMany", func(t *testing.T) {
		s := newStore(t)
		// More keys than one DeleteObjects request takes, a missing one among them.
		var keys []string
		for i := range objstore.MaxBatchDelete + 30 {
			keys = append(keys, fmt.Sprintf("del/%05d", i))
		}
		putAll(t, s, keys)
		_, err := s.Put(ctx, "keep/x", []byte("x"), objstore.Cond{})
		must(t, err)
		must(t, objstore.DeleteMany(ctx, s, append(keys, "del/never-existed")))
		left, err := s.List(ctx, "")
		must(t, err)
		if len(left) != 1 || left[0].Key != "keep/x" {
			t.Fatalf("after DeleteMany the store holds %d objects (%v...), want only keep/x", len(left), left[:min(3, len(left))])
		}
		must(t, objstore.DeleteMany(ctx, s, keys[:3])) // again: idempotent
		must(t, objstore.DeleteMany(ctx, s, nil))

		// The fallback for stores without DeleteObjects: one Delete per key.
		putAll(t, s, keys[:20])
		must(t, objstore.DeleteMany(ctx, singleDeletes{s}, keys[:20]))
		if left, err := s.List(ctx, "del/"); err != nil || len(left) != 0 {
			t.Fatalf("after the fallback DeleteMany: %d left, %v", len(left), err)
		}

		// An invalid key fails the call before anything is deleted.
		err = objstore.DeleteMany(ctx, s, []string{"keep/x", "../bad"})
		wantIs(t, err, objstore.ErrInvalidKey)
		if _, _, err := s.Get(ctx, "keep/x"); err != nil {
			t.Fatalf("keep/x after a refused DeleteMany: %v", err)
		}
	})

	t.Run("ListByPrefix", func(t *testing.T) {
		s := newStore(t)
		empty, err := s.List(ctx, "state/")
		must(t, err)
		if len(empty) != 0 {
			t.Fatalf("List on an empty store = %v", empty)
		}
		bodies := map[string]string{
			"state/b.json": "bb", "state/a.json": "a", "state/c.json": "ccc",
			"stateless": "x", "catalog/a/1.json": "1", "catalog/a/2.json": "22",
		}
		etags := map[string]string{}
		for k, v := range bodies {
			e, err := s.Put(ctx, k, []byte(v), objstore.Cond{})
			must(t, err)
			etags[k] = e
		}
		cases := []struct {
			prefix string
			want   []string
		}{
			{"state/", []string{"state/a.json", "state/b.json", "state/c.json"}},
			{"state", []string{"state/a.json", "state/b.json", "state/c.json", "stateless"}},
			{"catalog/a/", []string{"catalog/a/1.json", "catalog/a/2.json"}},
			{"catalog/b/", nil},
			{"", []string{"catalog/a/1.json", "catalog/a/2.json", "state/a.json", "state/b.json", "state/c.json", "stateless"}},
		}
		for _, c := range cases {
			got, err := s.List(ctx, c.prefix)
			must(t, err)
			var keys []string
			for _, in := range got {
				keys = append(keys, in.Key)
				if in.Size != int64(len(bodies[in.Key])) {
					t.Errorf("List(%q): %s size %d, want %d", c.prefix, in.Key, in.Size, len(bodies[in.Key]))
				}
				if in.ETag != etags[in.Key] {
					t.Errorf("List(%q): %s ETag %q, Put returned %q", c.prefix, in.Key, in.ETag, etags[in.Key])
				}
				if in.LastModified.IsZero() {
					t.Errorf("List(%q): %s has no LastModified", c.prefix, in.Key)
				}
			}
			if fmt.Sprint(keys) != fmt.Sprint(c.want) {
				t.Errorf("List(%q) = %v, want %v", c.prefix, keys, c.want)
			}
		}
		must(t, s.Delete(ctx, "state/b.json"))
		got, err := s.List(ctx, "state/")
		must(t, err)
		if len(got) != 2 {
			t.Errorf("List after delete = %v, want 2 objects", got)
		}
	})

	t.Run("ConcurrentIfMatchOneWinner", func(t *testing.T) {
		s := newStore(t)
		etag, err := s.Put(ctx, "race", []byte("round 0"), objstore.Cond{})
		must(t, err)
		for round := 1; round <= cfg.rounds; round++ {
			wins, results := race(cfg.writers, func(w int) (string, error) {
				return s.Put(ctx, "race", []byte(fmt.Sprintf("round %d writer %d", round, w)), objstore.Cond{IfMatch: etag})
			})
			etag = checkOneWinner(t, round, wins, results)
			wantBody(t, s, "race", fmt.Sprintf("round %d writer %d", round, wins[0]), etag)
		}
	})

	t.Run("ConcurrentCreateOneWinner", func(t *testing.T) {
		s := newStore(t)
		for round := 1; round <= cfg.rounds; round++ {
			key := fmt.Sprintf("create/%d", round)
			wins, results := race(cfg.writers, func(w int) (string, error) {
				return s.Put(ctx, key, []byte(fmt.Sprintf("writer %d", w)), objstore.Cond{IfNoneMatch: true})
			})
			etag := checkOneWinner(t, round, wins, results)
			wantBody(t, s, key, fmt.Sprintf("writer %d", wins[0]), etag)
		}
	})
}

type result struct {
	etag string
	err  error
}

// race runs put from n goroutines released together and returns the winners' indexes.
func race(n int, put func(w int) (string, error)) ([]int, []result) {
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			e, err := put(w)
			results[w] = result{e, err}
		}()
	}
	close(start)
	wg.Wait()
	var wins []int
	for w, r := range results {
		if r.err == nil {
			wins = append(wins, w)
		}
	}
	return wins, results
}

// singleDeletes hides a store's BatchDeleter.
type singleDeletes struct{ objstore.Store }

func putAll(t *testing.T, s objstore.Store, keys []string) {
	t.Helper()
	next := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for k := range next {
				if _, err := s.Put(context.Background(), k, []byte(k), objstore.Cond{}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

func checkOneWinner(t *testing.T, round int, wins []int, results []result) string {
	t.Helper()
	if len(wins) != 1 {
		t.Fatalf("round %d: %d winners %v, want exactly 1", round, len(wins), wins)
	}
	for w, r := range results {
		if r.err != nil && !errors.Is(r.err, objstore.ErrPrecondition) {
			t.Fatalf("round %d: writer %d lost with %v, want ErrPrecondition", round, w, r.err)
		}
	}
	return results[wins[0]].etag
}

func wantBody(t *testing.T, s objstore.Store, key, body, etag string) {
	t.Helper()
	got, gotTag, err := s.Get(context.Background(), key)
	must(t, err)
	if string(got) != body || gotTag != etag {
		t.Fatalf("Get(%s) = %q %s, want %q %s", key, got, gotTag, body, etag)
	}
}

func wantIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
