package restore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
)

// history: a full and an incremental under key version v1, then (after a rotation) a full and a
// delta under v2, all of catalogtest.KeyCRN.
func history() []catalog.Entry {
	f1 := catalogtest.Sample("sales", "20261101020000", events.Full, "")
	i1 := catalogtest.Sample("sales", "20261102020000", events.Incremental, f1.ImageTimestamp)
	f2 := catalogtest.Sample("sales", "20261108020000", events.Full, "")
	d2 := catalogtest.Sample("sales", "20261109020000", events.Delta, f2.ImageTimestamp)
	f1.KeyVersion, i1.KeyVersion, f2.KeyVersion, d2.KeyVersion = "v1", "v1", "v2", "v2"
	return []catalog.Entry{f1, i1, f2, d2}
}

func status(state events.KeyState, versions ...string) keyStatus {
	s := keyStatus{CRN: catalogtest.KeyCRN, State: state, Versions: map[string]bool{}}
	for _, v := range versions {
		s.Versions[v] = true
	}
	return s
}

func TestPlanWithKeys(t *testing.T) {
	crn := catalogtest.KeyCRN
	tests := []struct {
		name    string
		entries []catalog.Entry
		status  keyStatus
		target  string   // the plan's target; "" when refused
		want    []string // fragments of the refusal or of the notes
	}{
		{"all usable", history(), status(events.KeyActive, "v1", "v2"), "20261109020000", nil},
		{"newest version unlisted", history(), status(events.KeyActive, "v1"), "",
			[]string{"key version v2 of " + crn, "Key Protect lists no such version", "20261108020000-full, 20261109020000-delta",
				"the newest image whose keys are usable is 20261102020000", "target 20261102020000"}},
		{"key suspended", history(), status(events.KeySuspended, "v1", "v2"), "",
			[]string{"key version v2 of " + crn, "the key is suspended", "enable it", "no image has usable keys"}},
		{"key destroyed", history(), keyStatus{CRN: crn, State: events.KeyDestroyed}, "",
			[]string{"the key is destroyed", "20261109020000-delta"}},
		{"key deactivated", history(), status(events.KeyDeactivated, "v1", "v2"), "", []string{"the key is deactivated"}},
		{"key not found", history(), keyStatus{CRN: crn, Missing: true}, "", []string{"Key Protect has no such key"}},
		{"unrecorded version, key active", func() []catalog.Entry {
			h := history()
			h[3].KeyVersion = ""
			return h
		}(), status(events.KeyActive, "v1", "v2"), "20261109020000", []string{"does not record its key version"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			all, err := catalog.PlanRestore(tc.entries, time.Time{}, func(string, string) bool { return true })
			if err != nil {
				t.Fatal(err)
			}
			p, err := planWithKeys(tc.entries, time.Time{}, all, map[string]keyStatus{crn: tc.status})
			text := strings.Join(p.Notes, "; ")
			if tc.target == "" {
				if !errors.Is(err, ErrKeyUnavailable) {
					t.Fatalf("plan %s, err %v; want a refusal", p.Target, err)
				}
				text = err.Error()
			} else if err != nil || p.Target != tc.target {
				t.Fatalf("plan %s, err %v; want target %s", p.Target, err, tc.target)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("%q lacks %q", text, w)
				}
			}
		})
	}
}

// keysFunc is a Keys made of functions.
type keysFunc struct {
	key      func(string) (keyprotect.KeyInfo, error)
	versions func(string) ([]keyprotect.Version, error)
	calls    map[string]int
}

func (k *keysFunc) Key(_ context.Context, ref string) (keyprotect.KeyInfo, error) {
	k.calls["key "+ref]++
	return k.key(ref)
}

func (k *keysFunc) Versions(_ context.Context, ref string) ([]keyprotect.Version, error) {
	k.calls["versions "+ref]++
	return k.versions(ref)
}

func (k *keysFunc) Unwrap(context.Context, string, []byte, []string) ([]byte, error) {
	return nil, errors.New("not used")
}

func TestObserveKeys(t *testing.T) {
	down := &keyprotect.Error{Op: "get key metadata", Class: keyprotect.Transient, StatusCode: 503, Err: errors.New("down")}
	gone := &keyprotect.Error{Op: "get key metadata", Class: keyprotect.NotFound, StatusCode: 404, Err: errors.New("no key")}
	k := &keysFunc{calls: map[string]int{},
		key: func(ref string) (keyprotect.KeyInfo, error) {
			switch ref {
			case "active":
				return keyprotect.KeyInfo{State: events.KeyActive}, nil
			case "destroyed":
				return keyprotect.KeyInfo{State: events.KeyDestroyed}, nil
			case "missing":
				return keyprotect.KeyInfo{}, gone
			}
			return keyprotect.KeyInfo{}, down
		},
		versions: func(string) ([]keyprotect.Version, error) {
			return []keyprotect.Version{{ID: "v2"}, {ID: "v1"}}, nil
		}}
	got, err := observeKeys(context.Background(), k, []string{"active", "destroyed", "missing", "active"})
	if err != nil {
		t.Fatal(err)
	}
	if s := got["active"]; s.State != events.KeyActive || !s.Versions["v1"] || !s.Versions["v2"] || s.Unusable("v1") != "" || s.Unusable("v3") == "" {
		t.Fatalf("active: %+v", s)
	}
	if s := got["destroyed"]; s.Unusable("v1") == "" || k.calls["versions destroyed"] != 0 {
		t.Fatalf("destroyed: %+v, versions asked %d times", s, k.calls["versions destroyed"])
	}
	if s := got["missing"]; !s.Missing || s.Unusable("") == "" {
		t.Fatalf("missing: %+v", s)
	}
	if k.calls["key active"] != 1 {
		t.Fatalf("key asked %d times", k.calls["key active"])
	}
	if _, err := observeKeys(context.Background(), k, []string{"active", "broken"}); !keyprotect.IsTransient(err) {
		t.Fatalf("Key Protect down: %v", err)
	}
}
