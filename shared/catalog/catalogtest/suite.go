// Package catalogtest holds the contract every catalog.Catalog backend must keep, run against the
// in-memory object store in unit tests and against versitygw through ibm-cos-sdk-go in
// test/integration, and a builder of valid entries for tests.
package catalogtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// KeyCRN is the root key CRN of the sample entries.
const KeyCRN = "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b001"

// KeyV1 is the key version of the sample entries.
const KeyV1 = "7a0c6f2e-1d4b-4c8e-9f00-0000000000v1"

// Sample returns a valid, verified, online database-scope entry of db taken at ts (14 digits,
// read as UTC), ending 10 minutes later, with one image stored by keyguard. parent is the
// ParentTimestamp (empty for a full).
func Sample(db, ts string, typ events.BackupType, parent string) catalog.Entry {
	start, err := time.Parse(catalog.TimestampLayout, ts)
	if err != nil {
		panic(fmt.Sprintf("catalogtest.Sample: timestamp %q: %v", ts, err))
	}
	name := fmt.Sprintf("%s.0.db2inst1.DBPART000.%s.001", db, ts)
	sum := sha256.Sum256([]byte(name))
	size := int64(len(ts)) << 20
	return catalog.Entry{
		Database:        db,
		ImageTimestamp:  ts,
		Type:            typ,
		Mode:            events.Online,
		Scope:           catalog.ScopeDatabase,
		ParentTimestamp: parent,
		StartedAt:       start,
		EndedAt:         start.Add(10 * time.Minute),
		Images:          []catalog.Object{{Key: catalog.ImageKey(db, ts, name), Size: size, SHA256: hex.EncodeToString(sum[:])}},
		SizeBytes:       size,
		KeyCRN:          KeyCRN,
		KeyVersion:      KeyV1,
		Verification:    catalog.Verification{Verified: true, Tool: "db2ckbkp", At: start.Add(11 * time.Minute)},
		RunID:           "run-" + ts,
		Executor:        "db2-clp",
	}
}

// Discard returns e recorded as discarded for reason: Db2 wrote the image (its history counts
// it) but the run failed before it was stored, so no file is listed.
func Discard(e catalog.Entry, reason string) catalog.Entry {
	e.Images, e.SizeBytes, e.Keystore = nil, 0, nil
	e.Discarded = &catalog.Discard{At: e.EndedAt.Add(time.Minute), Reason: reason}
	return e
}

// SampleAt is Sample for an image Db2 took at local, a time in the Db2 server's zone: the image
// timestamp is local's wall clock, StartedAt and EndedAt are its UTC instants. Around a daylight
// saving change the timestamps of such entries do not sort like their instants.
func SampleAt(db string, local time.Time, typ events.BackupType, parent string) catalog.Entry {
	ts := catalog.Timestamp(local)
	e := Sample(db, ts, typ, parent)
	d := local.UTC().Sub(e.StartedAt)
	e.StartedAt, e.EndedAt = e.StartedAt.Add(d), e.EndedAt.Add(d)
	e.Verification.At = e.Verification.At.Add(d)
	return e
}

// FallBack is a history of db taken by a Db2 server in America/New_York on the night clocks
// went back (2024-11-03, 02:00 EDT -> 01:00 EST): a full at 01:30 EDT, then deltas at 01:10 and
// 01:50 EST. The first delta's timestamp sorts before its parent's; in UTC the order is full,
// delta, delta. Entries are returned oldest first (by instant).
func FallBack(db string) []catalog.Entry {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(fmt.Sprintf("catalogtest.FallBack: %v", err))
	}
	full := time.Date(2024, 11, 3, 5, 30, 0, 0, time.UTC).In(ny) // 01:30 EDT
	d1 := time.Date(2024, 11, 3, 6, 10, 0, 0, time.UTC).In(ny)   // 01:10 EST
	d2 := time.Date(2024, 11, 3, 6, 50, 0, 0, time.UTC).In(ny)   // 01:50 EST
	f := SampleAt(db, full, events.Full, "")
	a := SampleAt(db, d1, events.Delta, f.ImageTimestamp)
	b := SampleAt(db, d2, events.Delta, a.ImageTimestamp)
	return []catalog.Entry{f, a, b}
}

// Run checks catalog.New over the stores newStore returns (each empty, of its own key space):
// entries, listing, deletion, and the index that serves Summaries, Prune and planning (rebuilt
// when missing or unreadable, repaired after a crash between an entry and its summary, exact
// under concurrent Puts and deletions, deletions stopped at each step).
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	ctx := context.Background()
	full := Sample("db1", "20240303010000", events.Full, "")
	incr := Sample("db1", "20240304010000", events.Incremental, full.ImageTimestamp)
	delta := Sample("db1", "20240304090000", events.Delta, incr.ImageTimestamp)

	t.Run("PutGetList", func(t *testing.T) {
		c := catalog.New(newStore(t))
		if got, err := c.List(ctx, "db1"); err != nil || len(got) != 0 {
			t.Fatalf("List of an empty catalog = %v, %v; want empty", got, err)
		}
		for _, e := range []catalog.Entry{delta, full, incr} {
			if err := c.Put(ctx, e); err != nil {
				t.Fatalf("Put %s: %v", e.Name(), err)
			}
		}
		if err := c.Put(ctx, Sample("db2", "20240303010000", events.Full, "")); err != nil {
			t.Fatalf("Put db2: %v", err)
		}
		got, err := c.List(ctx, "db1")
		if err != nil {
			t.Fatal(err)
		}
		if names := Names(got); fmt.Sprint(names) != "[20240303010000-full 20240304010000-incremental 20240304090000-delta]" {
			t.Fatalf("List = %v", names)
		}
		e, err := c.Get(ctx, "db1", incr.ImageTimestamp)
		if err != nil {
			t.Fatal(err)
		}
		if !Equal(e, incr) {
			t.Errorf("Get = %+v, want %+v", e, incr)
		}
		if _, err := c.Get(ctx, "db1", "20240305010000"); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("Get of a missing entry = %v, want ErrNotFound", err)
		}
		if _, err := c.Get(ctx, "db1", "2024"); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("Get of a bad timestamp = %v, want ErrInvalid", err)
		}
	})

	t.Run("PutIsCreateOnlyAndIdempotent", func(t *testing.T) {
		c := catalog.New(newStore(t))
		if err := c.Put(ctx, full); err != nil {
			t.Fatal(err)
		}
		same := full
		same.StartedAt = full.StartedAt.In(time.FixedZone("CET", 3600)) // same instant
		if err := c.Put(ctx, same); err != nil {
			t.Errorf("Put of an identical entry again = %v, want nil (idempotent)", err)
		}
		other := full
		other.SizeBytes++
		if err := c.Put(ctx, other); !errors.Is(err, catalog.ErrExists) {
			t.Errorf("Put of a different entry at the same key = %v, want ErrExists", err)
		}
		otherType := Sample("db1", full.ImageTimestamp, events.Delta, "20240302010000")
		if err := c.Put(ctx, otherType); !errors.Is(err, catalog.ErrExists) {
			t.Errorf("Put of another type at the same timestamp = %v, want ErrExists", err)
		}
		e, err := c.Get(ctx, "db1", full.ImageTimestamp)
		if err != nil || !Equal(e, full) {
			t.Errorf("stored entry changed: %+v, %v", e, err)
		}
	})

	t.Run("PutRejectsInvalid", func(t *testing.T) {
		s := newStore(t)
		c := catalog.New(s)
		bad := incr
		bad.ParentTimestamp = ""
		if err := c.Put(ctx, bad); !errors.Is(err, catalog.ErrInvalid) {
			t.Fatalf("Put of an invalid entry = %v, want ErrInvalid", err)
		}
		if infos, err := s.List(ctx, ""); err != nil || len(infos) != 0 {
			t.Errorf("an invalid Put wrote something: %v, %v", infos, err)
		}
	})

	t.Run("ConcurrentPutsOneWinner", func(t *testing.T) {
		c := catalog.New(newStore(t))
		const writers = 8
		var wins, exists atomic.Int32
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				e := full
				e.RunID = fmt.Sprintf("run-%d", i)
				switch err := c.Put(ctx, e); {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, catalog.ErrExists):
					exists.Add(1)
				default:
					t.Errorf("Put: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || exists.Load() != writers-1 {
			t.Errorf("%d winners and %d ErrExists, want 1 and %d", wins.Load(), exists.Load(), writers-1)
		}
	})

	t.Run("ListSkipsAndReportsUnreadableObjects", func(t *testing.T) {
		newer := strings.Replace(string(must(catalog.Encode(Sample("db1", "20240305010000", events.Full, "")))),
			`"schema_version": 1,`, `"schema_version": 99, "retention_class": "gold",`, 1)
		cases := []struct {
			name, key, body string
			reason          string // in the report; "" when the object is skipped silently
		}{
			{"bad name", "catalog/db1/notes.txt", "hello", "not an entry name"},
			{"unknown type", "catalog/db1/20240305010000-weekly.json", "{}", "not an entry name"},
			{"corrupt body", catalog.Key("db1", "20240305010000", events.Full), `{"schema_version":1,`, "unexpected EOF"},
			{"unknown field", catalog.Key("db1", "20240305010000", events.Full), `{"schema_version":1,"surprise":true}`, "unknown field"},
			{"newer schema", catalog.Key("db1", "20240305010000", events.Full), newer, "newer than this reader"},
			{"entry of another key", catalog.Key("db1", "20240305010000", events.Full), string(must(catalog.Encode(full))), "the entry names"},
			{"too large", catalog.Key("db1", "20240305010000", events.Full), strings.Repeat(" ", catalog.MaxEncodedSize+1), "more than"},
			{"unknown folder", "catalog/db1/notes/20240305010000-full.json", "{}", "not an entry name"},
			{"second entry at a timestamp", catalog.Key("db1", full.ImageTimestamp, events.Delta),
				string(must(catalog.Encode(Sample("db1", full.ImageTimestamp, events.Delta, "20240302010000")))), "share timestamp"},
			{"run record", "catalog/db1/runs/run-1.json", `{"run":"run-1"}`, ""},
			{"restore record", "catalog/db1/restores/20240305010000.json", "not for the catalog", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				c := catalog.New(s)
				for _, e := range []catalog.Entry{full, incr} {
					if err := c.Put(ctx, e); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := s.Put(ctx, tc.key, []byte(tc.body), objstore.Cond{}); err != nil {
					t.Fatal(err)
				}
				want := []string{full.Name(), incr.Name()}
				if tc.name == "second entry at a timestamp" {
					want = []string{incr.Name()} // neither of the two can be trusted
				}
				got, err := c.List(ctx, "db1")
				if err != nil || fmt.Sprint(Names(got)) != fmt.Sprint(want) {
					t.Fatalf("List = %v, %v; want %v and no error", Names(got), err, want)
				}
				l, err := c.ListReport(ctx, "db1")
				if err != nil || fmt.Sprint(Names(l.Entries)) != fmt.Sprint(want) {
					t.Fatalf("ListReport = %v, %v; want %v", Names(l.Entries), err, want)
				}
				if tc.reason == "" {
					if len(l.Skipped) != 0 {
						t.Errorf("a reserved folder's object was reported: %+v", l.Skipped)
					}
					return
				}
				found := false
				for _, sk := range l.Skipped {
					found = found || sk.Key == tc.key && strings.Contains(sk.Reason, tc.reason)
				}
				if !found {
					t.Errorf("Skipped = %+v, want %s reported with a reason about %q", l.Skipped, tc.key, tc.reason)
				}
				// Retention prunes nothing while something is skipped.
				old := Sample("db1", "20240101010000", events.Full, "")
				l.Entries = append([]catalog.Entry{old, Sample("db1", "20240102010000", events.Full, "")}, l.Entries...)
				if keep, drop := l.Retain(catalog.RetentionPolicy{}, full.EndedAt.AddDate(1, 0, 0), nil); len(drop) != 0 || len(keep) != len(l.Entries) {
					t.Errorf("Listing.Retain with skipped objects dropped %v", Names(drop))
				}
			})
		}
	})

	t.Run("ListFailsOnStoreErrors", func(t *testing.T) {
		c := catalog.New(newStore(t))
		if _, err := c.ListReport(ctx, "../db1"); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("ListReport of a bad database = %v, want ErrInvalid", err)
		}
	})

	t.Run("DeleteRemovesEntryAndOwnImages", func(t *testing.T) {
		s := newStore(t)
		c := catalog.New(s)
		e := full
		ks := catalog.Object{Key: catalog.ImageKey("db1", e.ImageTimestamp, "keystore.p12"), Size: 3, SHA256: e.Images[0].SHA256}
		e.Keystore = &ks
		e.Images = append(e.Images, catalog.Object{Key: "db2oncloud://backups/backup-1", Size: 10})
		for _, o := range []catalog.Object{e.Images[0], ks} {
			if _, err := s.Put(ctx, o.Key, []byte("img"), objstore.Cond{}); err != nil {
				t.Fatal(err)
			}
		}
		unrelated := catalog.ImageKey("db1", incr.ImageTimestamp, "x")
		if _, err := s.Put(ctx, unrelated, []byte("keep me"), objstore.Cond{}); err != nil {
			t.Fatal(err)
		}
		if err := c.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, "db1", e.ImageTimestamp); err != nil {
			t.Fatal(err)
		}
		infos, err := s.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		infos = withoutIndex(infos)
		if len(infos) != 1 || infos[0].Key != unrelated {
			t.Errorf("after Delete the store holds %v, want only %s", infos, unrelated)
		}
		if err := c.Delete(ctx, "db1", e.ImageTimestamp); err != nil {
			t.Errorf("Delete of a missing entry = %v, want nil", err)
		}
		if _, err := c.Get(ctx, "db1", e.ImageTimestamp); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("Get after Delete = %v, want ErrNotFound", err)
		}
	})

	t.Run("DiscardedEntries", func(t *testing.T) {
		s := newStore(t)
		c := catalog.New(s)
		gone := Discard(Sample("db1", "20240303090000", events.Delta, full.ImageTimestamp), "upload image: 503 Slow Down")
		stored := Sample("db1", "20240303100000", events.Full, "") // uploaded, then its keystore copy failed
		for _, o := range stored.Images {
			if _, err := s.Put(ctx, o.Key, []byte("img"), objstore.Cond{}); err != nil {
				t.Fatal(err)
			}
		}
		storedGone := stored
		storedGone.Discarded = &catalog.Discard{At: stored.EndedAt, Reason: "copy keystore: no such file"}
		for _, e := range []catalog.Entry{full, gone, storedGone} {
			if err := c.Put(ctx, e); err != nil {
				t.Fatalf("Put %s: %v", e.Name(), err)
			}
		}
		if err := c.Put(ctx, gone); err != nil {
			t.Errorf("Put of the same discarded entry again = %v, want nil", err)
		}
		got, err := c.Get(ctx, "db1", gone.ImageTimestamp)
		if err != nil || !Equal(got, gone) || !got.IsDiscarded() {
			t.Fatalf("Get = %+v, %v; want the discarded entry", got, err)
		}
		// No later entry may name a discarded image as its parent.
		onGone := Sample("db1", "20240303170000", events.Delta, gone.ImageTimestamp)
		var ce *catalog.ChainError
		if err := c.Put(ctx, onGone); !errors.Is(err, catalog.ErrBrokenChain) || !errors.As(err, &ce) || ce.Discarded != gone.ImageTimestamp {
			t.Errorf("Put of an entry naming a discarded parent = %v, want a *ChainError naming %s", err, gone.ImageTimestamp)
		}
		if _, err := c.Get(ctx, "db1", onGone.ImageTimestamp); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("the refused entry was stored: %v", err)
		}
		l, err := c.ListReport(ctx, "db1")
		if err != nil || len(l.Skipped) != 0 || fmt.Sprint(Names(l.Entries)) != fmt.Sprint(Names([]catalog.Entry{full, gone, storedGone})) {
			t.Fatalf("ListReport = %v %+v, %v", Names(l.Entries), l.Skipped, err)
		}
		// Retention deletes discarded entries and the files they stored.
		_, drop := l.Retain(catalog.RetentionPolicy{}, full.EndedAt.Add(time.Hour), nil)
		if fmt.Sprint(Names(drop)) != fmt.Sprint(Names([]catalog.Entry{storedGone, gone})) {
			t.Fatalf("Retain drops %v, want the two discarded entries", Names(drop))
		}
		for _, e := range drop {
			if err := c.Delete(ctx, "db1", e.ImageTimestamp); err != nil {
				t.Fatal(err)
			}
		}
		infos, err := s.List(ctx, "")
		infos = withoutIndex(infos)
		if err != nil || len(infos) != 1 || infos[0].Key != full.Key() {
			t.Errorf("after deleting the discarded entries the store holds %v, %v; want only %s", infos, err, full.Key())
		}
	})

	t.Run("ListOrdersByInstant", func(t *testing.T) {
		c := catalog.New(newStore(t))
		hist := FallBack("db1")
		for _, e := range hist {
			if err := c.Put(ctx, e); err != nil {
				t.Fatalf("Put %s: %v", e.Name(), err)
			}
		}
		got, err := c.List(ctx, "db1")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(Names(got)) != fmt.Sprint(Names(hist)) {
			t.Errorf("List = %v, want the order of the instants %v", Names(got), Names(hist))
		}
	})

	t.Run("ListManyEntries", func(t *testing.T) {
		c := catalog.New(newStore(t))
		start := time.Date(2024, 3, 3, 1, 0, 0, 0, time.UTC)
		var want []string
		parent := ""
		for i := range 40 {
			ts := catalog.Timestamp(start.Add(time.Duration(i) * 8 * time.Hour))
			typ := events.Delta
			if i%21 == 0 {
				typ = events.Full
			}
			p := parent
			if typ == events.Full {
				p = ""
			}
			e := Sample("db1", ts, typ, p)
			if err := c.Put(ctx, e); err != nil {
				t.Fatal(err)
			}
			want = append(want, e.Name())
			parent = ts
		}
		got, err := c.List(ctx, "db1")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(Names(got)) != fmt.Sprint(want) {
			t.Errorf("List = %v\nwant %v", Names(got), want)
		}
	})

	runIndex(t, newStore)
}

// withoutIndex drops the objects of the catalog's index (index/...).
func withoutIndex(infos []objstore.Info) []objstore.Info {
	var out []objstore.Info
	for _, in := range infos {
		if !strings.HasPrefix(in.Key, "index/") {
			out = append(out, in)
		}
	}
	return out
}

// Names returns each entry's Name.
func Names(entries []catalog.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Name()
	}
	return out
}

// Equal reports whether a and b encode to the same stored bytes.
func Equal(a, b catalog.Entry) bool {
	ea, err1 := catalog.Encode(a)
	eb, err2 := catalog.Encode(b)
	return err1 == nil && err2 == nil && string(ea) == string(eb)
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// Partitioned returns e as a backup of a partitioned database over partitions parts (the first
// is the catalog partition): one image per partition, named as Db2 names them
// (<ALIAS>.0.db2inst1.DBPARTnnn.<timestamp>.001), each recorded in Partitions.
func Partitioned(e catalog.Entry, parts ...int) catalog.Entry {
	e.Images, e.Partitions, e.SizeBytes = nil, nil, 0
	for i, n := range parts {
		name := fmt.Sprintf("%s.0.db2inst1.DBPART%03d.%s.001", e.Database, n, e.ImageTimestamp)
		sum := sha256.Sum256([]byte(name))
		o := catalog.Object{Key: catalog.ImageKey(e.Database, e.ImageTimestamp, name), Size: 1 << 20, SHA256: hex.EncodeToString(sum[:])}
		e.Images = append(e.Images, o)
		e.SizeBytes += o.Size
		e.Partitions = append(e.Partitions, catalog.Partition{Number: n, Catalog: i == 0, Image: o.Key})
	}
	slices.SortFunc(e.Partitions, func(a, b catalog.Partition) int { return a.Number - b.Number })
	return e
}
