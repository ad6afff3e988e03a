package state_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/shared/state/statetest"
)

func TestMemoryStoreContract(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store { return state.NewMemoryStore() })
}

// TestCOSStoreContractGofakes3 runs the contract through ibm-cos-sdk-go against gofakes3 (which
// answers 412 to If-Match on a missing key; versitygw in test/integration holds the strict one).
// Contention is lighter here (8 × 25): the SDK under -race makes 32 × 50 take a minute; the full
// run is against the memory store above and versitygw.
func TestCOSStoreContractGofakes3(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("b"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	client, err := objstore.NewCOSClient(objstore.Options{Endpoint: srv.URL, HMACKeyID: "k", HMACSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	statetest.Run(t, func(t *testing.T) state.Store {
		n++
		return state.NewObjectStore(objstore.NewCOS(client, "b", "run"+strings.Repeat("x", n)))
	}, statetest.MissingEtagIsConflict(), statetest.Concurrency(8, 25, time.Minute))
}

func TestValidateDatabase(t *testing.T) {
	cases := []struct {
		db string
		ok bool
	}{
		{"db2prod", true},
		{"BLUDB", true},
		{"eu-de.orders_2", true},
		{"a", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{".", false},
		{"..", false},
		{"-lead", false},
		{"a/b", false},
		{"a b", false},
		{"a\nb", false},
		{"ünï", false},
		{"a%2Fb", false},
	}
	for _, c := range cases {
		err := state.ValidateDatabase(c.db)
		if (err == nil) != c.ok {
			t.Errorf("ValidateDatabase(%q) = %v, want ok=%v", c.db, err, c.ok)
		}
		if err != nil && !errors.Is(err, state.ErrInvalidDatabase) {
			t.Errorf("ValidateDatabase(%q) = %v, want ErrInvalidDatabase", c.db, err)
		}
	}
}

func TestStoredLayout(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	s := state.NewObjectStore(mem)
	if _, err := s.Put(ctx, "db1", state.New("", "crn:k"), ""); err != nil {
		t.Fatal(err)
	}
	body, _, err := mem.Get(ctx, "state/db1.json")
	if err != nil {
		t.Fatalf("state not stored at state/db1.json: %v", err)
	}
	if !bytes.Contains(body, []byte(`"database":"db1"`)) || !bytes.HasSuffix(body, []byte("}\n")) {
		t.Errorf("stored body %s: want the database filled in, compact JSON and a newline", body)
	}
	if _, err := mem.Put(ctx, "state/notes.txt", []byte("x"), objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "db0", state.New("db0", ""), ""); err != nil {
		t.Fatal(err)
	}
	dbs, err := s.Databases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(dbs, ",") != "db0,db1" {
		t.Errorf("Databases = %v, want [db0 db1]", dbs)
	}
}

func TestPutRefusesBadStates(t *testing.T) {
	ctx := context.Background()
	s := state.NewMemoryStore()
	big := state.New("db1", "")
	big.Seen = []string{strings.Repeat("x", state.MaxEncodedSize)}
	cases := []struct {
		name string
		st   *state.State
		want string
	}{
		{"nil", nil, "nil state"},
		{"other database", state.New("db2", ""), `names database "db2"`},
		{"no schema version", &state.State{Database: "db1"}, "schema_version 0"},
		{"oversized", big, "more than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Put(ctx, "db1", c.st, "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Put = %v, want an error containing %q", err, c.want)
			}
			if _, _, err := s.Get(ctx, "db1"); !errors.Is(err, state.ErrNotFound) {
				t.Fatalf("refused Put stored something: %v", err)
			}
		})
	}
}

func TestGetCorruptIsNotNotFound(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	s := state.NewObjectStore(mem)
	for _, body := range []string{"{not json", `{"schema_version":0}`, ""} {
		if _, err := mem.Put(ctx, state.Key("db1"), []byte(body), objstore.Cond{}); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.Get(ctx, "db1")
		if err == nil || errors.Is(err, state.ErrNotFound) {
			t.Errorf("Get of %q = %v, want a decode error", body, err)
		}
		// Update must not overwrite it as if absent.
		_, err = state.Update(ctx, s, "db1", func() *state.State { return state.New("db1", "") },
			func(*state.State) error { return nil })
		if err == nil {
			t.Errorf("Update over %q succeeded", body)
		}
	}
}

func TestEncodeDeterministic(t *testing.T) {
	at := time.Date(2024, 3, 1, 2, 0, 0, 0, time.UTC)
	mk := func(order []events.BackupType) *state.State {
		st := state.New("db1", "crn:k")
		st.Slots = map[events.BackupType]time.Time{}
		for i, bt := range order {
			st.Slots[bt] = at.Add(time.Duration(i) * time.Hour)
		}
		st.MarkSeen("a<b>&c")
		return st
	}
	types := []events.BackupType{events.Full, events.Incremental, events.Delta}
	first, err := state.Encode(mk(types))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := state.Encode(mk(types))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("Encode not deterministic:\n%s\n%s", first, again)
		}
	}
	if !bytes.Contains(first, []byte(`"a<b>&c"`)) {
		t.Errorf("HTML-escaped output: %s", first)
	}
	if i, j := bytes.Index(first, []byte(`"delta"`)), bytes.Index(first, []byte(`"full"`)); i < 0 || j < 0 || i > j {
		t.Errorf("map keys not sorted: %s", first)
	}
	back, err := state.Decode(first)
	if err != nil {
		t.Fatal(err)
	}
	again, err := state.Encode(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Errorf("Encode(Decode(x)) != x:\n%s\n%s", first, again)
	}
}
