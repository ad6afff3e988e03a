package catalog_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

func TestContractMemory(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) objstore.Store { return objstore.NewMemory() })
}

// retriedStore answers ErrPrecondition to a conditional Put that it has just performed, the way
// an SDK retry of a PUT whose first response was lost comes back 412.
type retriedStore struct {
	objstore.Store
	puts int
}

func (s *retriedStore) Put(ctx context.Context, key string, body []byte, c objstore.Cond) (string, error) {
	if strings.HasPrefix(key, "catalog/") {
		s.puts++
	}
	if _, err := s.Store.Put(ctx, key, body, c); err != nil {
		return "", err
	}
	if c.IfNoneMatch {
		return "", objstore.ErrPrecondition
	}
	return "", nil
}

func TestPutAfterLostResponseIsSuccess(t *testing.T) {
	ctx := context.Background()
	s := &retriedStore{Store: objstore.NewMemory()}
	c := catalog.New(s)
	e := catalogtest.Sample("db1", "20240303010000", events.Full, "")
	if err := c.Put(ctx, e); err != nil {
		t.Fatalf("Put whose retry saw 412 = %v, want nil (the stored entry is ours)", err)
	}
	if s.puts != 1 {
		t.Errorf("%d puts of the entry, want 1", s.puts)
	}
	if l, err := c.Summaries(ctx, "db1"); err != nil || len(l.Entries) != 1 {
		t.Errorf("Summaries = %+v, %v; want the entry", l, err)
	}
	got, err := c.Get(ctx, "db1", e.ImageTimestamp)
	if err != nil || !catalogtest.Equal(got, e) {
		t.Errorf("Get = %+v, %v", got, err)
	}
}

// failingStore fails every call with err.
type failingStore struct {
	objstore.Store
	err error
}

func (s failingStore) List(context.Context, string) ([]objstore.Info, error) { return nil, s.err }
func (s failingStore) Get(context.Context, string) ([]byte, string, error) {
	return nil, "", s.err
}

func TestStoreErrorsAreWrapped(t *testing.T) {
	ctx := context.Background()
	boom := objstore.MarkTransient(errors.New("503 slow down"))
	c := catalog.New(failingStore{Store: objstore.NewMemory(), err: boom})
	e := catalogtest.Sample("db1", "20240303010000", events.Full, "")
	if err := c.Put(ctx, e); !errors.Is(err, boom) || !objstore.IsTransient(err) {
		t.Errorf("Put = %v, want the transient store error", err)
	}
	if _, err := c.List(ctx, "db1"); !errors.Is(err, boom) {
		t.Errorf("List = %v, want the store error", err)
	}
	if _, err := c.Get(ctx, "db1", e.ImageTimestamp); !errors.Is(err, boom) {
		t.Errorf("Get = %v, want the store error", err)
	}
	if err := c.Delete(ctx, "db1", e.ImageTimestamp); !errors.Is(err, boom) {
		t.Errorf("Delete = %v, want the store error", err)
	}
	if _, err := c.List(ctx, "../x"); !errors.Is(err, catalog.ErrInvalid) {
		t.Errorf("List of a bad database = %v, want ErrInvalid", err)
	}
}

// flakyGets fails the GET of one key with a transient error.
type flakyGets struct {
	objstore.Store
	key string
	err error
}

func (s flakyGets) Get(ctx context.Context, key string) ([]byte, string, error) {
	if key == s.key {
		return nil, "", s.err
	}
	return s.Store.Get(ctx, key)
}

// TestListFailsWhenAReadFails: an object that could not be read (a store error) is not an
// unreadable entry: List fails rather than report a partial view as complete.
func TestListFailsWhenAReadFails(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	full := catalogtest.Sample("db1", "20240303010000", events.Full, "")
	delta := catalogtest.Sample("db1", "20240303090000", events.Delta, full.ImageTimestamp)
	for _, e := range []catalog.Entry{full, delta} {
		if err := catalog.New(mem).Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	boom := objstore.MarkTransient(errors.New("503 slow down"))
	c := catalog.New(flakyGets{Store: mem, key: delta.Key(), err: boom})
	if got, err := c.List(ctx, "db1"); !errors.Is(err, boom) {
		t.Errorf("List = %v, %v; want the store error", catalogtest.Names(got), err)
	}
	if l, err := c.ListReport(ctx, "db1"); !errors.Is(err, boom) || len(l.Skipped) != 0 {
		t.Errorf("ListReport = %+v, %v; want the store error", l, err)
	}
}
