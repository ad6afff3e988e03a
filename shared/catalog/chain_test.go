package catalog_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
)

// TestChainWeekGolden records the chain of every image of the three-week history.
func TestChainWeekGolden(t *testing.T) {
	entries := weekHistory()
	var out strings.Builder
	fmt.Fprintf(&out, "# restore chain (restore order) of every image of weekHistory: %d images\n", len(entries))
	for _, e := range entries {
		chain, err := catalog.Chain(entries, e.ImageTimestamp)
		if err != nil {
			t.Fatalf("Chain(%s): %v", e.Name(), err)
		}
		if last := chain[len(chain)-1]; last.ImageTimestamp != e.ImageTimestamp {
			t.Errorf("Chain(%s) ends with %s", e.Name(), last.Name())
		}
		if chain[0].Type != events.Full {
			t.Errorf("Chain(%s) starts with %s", e.Name(), chain[0].Name())
		}
		fmt.Fprintf(&out, "%s: %s\n", e.Name(), strings.Join(catalogtest.Names(chain), " "))
	}
	golden(t, "week.chains.golden", []byte(out.String()))
}

func TestChainSemantics(t *testing.T) {
	const (
		f1 = "20240303010000"
		d1 = "20240303090000"
		i1 = "20240304010000"
		d2 = "20240304090000"
		d3 = "20240304170000"
		i2 = "20240305010000"
		d4 = "20240305090000"
		f2 = "20240310010000"
	)
	s := catalogtest.Sample
	base := []catalog.Entry{
		s("db1", f1, events.Full, ""),
		s("db1", d1, events.Delta, f1),
		s("db1", i1, events.Incremental, f1),
		s("db1", d2, events.Delta, i1),
		s("db1", d3, events.Delta, d2),
		s("db1", i2, events.Incremental, f1),
		s("db1", d4, events.Delta, i2),
		s("db1", f2, events.Full, ""),
	}
	cases := []struct {
		name    string
		entries []catalog.Entry
		target  string
		want    string // chain names, or error substring after "error: "
		missing string
	}{
		{"full alone", base, f1, f1 + "-full", ""},
		{"newer full alone", base, f2, f2 + "-full", ""},
		{"delta on a full", base, d1, f1 + "-full " + d1 + "-delta", ""},
		{"incremental skips earlier deltas", base, i1, f1 + "-full " + i1 + "-incremental", ""},
		{"deltas after an incremental", base, d3, f1 + "-full " + i1 + "-incremental " + d2 + "-delta " + d3 + "-delta", ""},
		{"second incremental is cumulative", base, d4, f1 + "-full " + i2 + "-incremental " + d4 + "-delta", ""},
		{"unsorted input", []catalog.Entry{base[4], base[0], base[3], base[2]}, d3, f1 + "-full " + i1 + "-incremental " + d2 + "-delta " + d3 + "-delta", ""},
		{"missing full", without(base, f1), d3, "error: needs image " + f1, f1},
		{"missing delta", without(base, d2), d3, "error: needs image " + d2, d2},
		{"missing incremental", without(base, i1), d2, "error: needs image " + i1, i1},
		{"not in catalog", base, "20240401000000", "error: catalog entry not found", ""},
		{"incremental on a delta", append(without(base, i2), s("db1", i2, events.Incremental, d3)), i2, "error: an incremental builds on a full", ""},
		{"full in between", append(without(base, i2), s("db1", "20240305000000", events.Full, ""), s("db1", i2, events.Incremental, f1)), i2, "error: full 20240305000000 was taken in between", ""},
		{"delta skipping a backup", append(without(base, d3), s("db1", d3, events.Delta, i1)), d3, "error: " + d2 + "-delta was taken in between", ""},
		{"mixed scopes", func() []catalog.Entry {
			ts := s("db1", d2, events.Delta, i1)
			ts.Scope, ts.Tablespaces = catalog.ScopeTablespace, []string{"TS1"}
			return append(without(base, d2, d3), ts)
		}(), d2, "error: the parent is a backup of database, this one of tablespace:TS1", ""},
		{"two databases", append(base, s("db2", "20240306010000", events.Full, "")), f1, "error: mixed", ""},
		{"one timestamp twice", append(base, s("db1", f2, events.Delta, d4)), f1, "error: two entries", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chain, err := catalog.Chain(tc.entries, tc.target)
			if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Chain = %v, %v; want an error containing %q", catalogtest.Names(chain), err, want)
				}
				var ce *catalog.ChainError
				if tc.missing != "" && (!errors.As(err, &ce) || !ce.Missing || ce.Parent != tc.missing || !errors.Is(err, catalog.ErrBrokenChain)) {
					t.Errorf("error %v: want a *ChainError with Missing %s", err, tc.missing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(catalogtest.Names(chain), " "); got != tc.want {
				t.Errorf("Chain = %s\nwant    %s", got, tc.want)
			}
		})
	}
}

// TestFallBackHour: entries are ordered by their UTC instants, not by Db2's local timestamps,
// so the night clocks go back does not break chains, plans or retention.
func TestFallBackHour(t *testing.T) {
	hist := catalogtest.FallBack("db1")
	full, d1, d2 := hist[0], hist[1], hist[2]
	if d1.ImageTimestamp > full.ImageTimestamp {
		t.Fatalf("the history does not exercise the repeated hour: %v", catalogtest.Names(hist))
	}
	for _, e := range hist {
		if err := e.Validate(); err != nil {
			t.Errorf("Validate(%s) = %v", e.Name(), err)
		}
	}
	reversed := []catalog.Entry{d2, d1, full}
	chain, err := catalog.Chain(reversed, d2.ImageTimestamp)
	if err != nil || fmt.Sprint(catalogtest.Names(chain)) != fmt.Sprint(catalogtest.Names(hist)) {
		t.Fatalf("Chain(%s) = %v, %v; want %v", d2.Name(), catalogtest.Names(chain), err, catalogtest.Names(hist))
	}
	p, err := catalog.PlanRestore(reversed, time.Time{}, nil)
	if err != nil || p.Target != d2.ImageTimestamp {
		t.Fatalf("PlanRestore = %s, %v; want the last delta %s", p.Target, err, d2.ImageTimestamp)
	}
	p, err = catalog.PlanRestore(reversed, d1.EndedAt, nil)
	if err != nil || p.Target != d1.ImageTimestamp {
		t.Fatalf("PlanRestore to the end of the first delta = %s, %v; want %s", p.Target, err, d1.ImageTimestamp)
	}
	keep, drop := catalog.Retain(reversed, catalog.RetentionPolicy{}, d2.EndedAt, nil)
	if len(drop) != 0 || fmt.Sprint(catalogtest.Names(keep)) != fmt.Sprint(catalogtest.Names(hist)) {
		t.Errorf("Retain = keep %v drop %v; want all kept, oldest instant first", catalogtest.Names(keep), catalogtest.Names(drop))
	}
	// A delta taken in the repeated hour that names as parent an image taken after it (by the
	// clock) is broken, although its parent's timestamp is the smaller one.
	late := catalogtest.SampleAt("db1", d1.StartedAt.Add(-time.Hour), events.Delta, full.ImageTimestamp)
	late.ImageTimestamp = "20241103012000"
	late.Images[0].Key = catalog.ImageKey("db1", late.ImageTimestamp, "x")
	late.StartedAt = full.StartedAt.Add(-30 * time.Minute) // 01:00 EDT: before the full
	late.EndedAt = late.StartedAt.Add(time.Minute)
	late.Verification.At = late.EndedAt
	if _, err := catalog.Chain([]catalog.Entry{full, late}, late.ImageTimestamp); !errors.Is(err, catalog.ErrBrokenChain) || !strings.Contains(err.Error(), "not older") {
		t.Errorf("Chain of a delta started before its parent = %v, want a broken chain (parent not older)", err)
	}
	if catalog.Compare(full, d1) >= 0 || catalog.Compare(d1, d2) >= 0 || catalog.Compare(d2, d2) != 0 {
		t.Error("Compare does not order by instant")
	}
}

// TestDiscarded: a discarded image is never restorable, and an image Db2 built on a discarded
// one is a broken chain naming it, whatever parent the catalog records.
func TestDiscarded(t *testing.T) {
	const (
		f1 = "20240303010000"
		d1 = "20240303090000"
		d2 = "20240303170000"
		i1 = "20240304010000"
		f2 = "20240310010000"
	)
	s, gone := catalogtest.Sample, catalogtest.Discard
	cases := []struct {
		name      string
		entries   []catalog.Entry
		target    string
		want      string // chain, or "error: " and a substring
		discarded string // ChainError.Discarded
	}{
		{"the discarded image itself", []catalog.Entry{s("db1", f1, events.Full, ""), gone(s("db1", d1, events.Delta, f1), "db2ckbkp failed")},
			d1, "error: was discarded (db2ckbkp failed)", d1},
		{"a delta on a discarded delta, the catalog naming an older parent", []catalog.Entry{s("db1", f1, events.Full, ""),
			gone(s("db1", d1, events.Delta, f1), "upload failed"), s("db1", d2, events.Delta, f1)},
			d2, "error: Db2 built it on " + d1 + "-delta, which was discarded (upload failed)", d1},
		{"a delta naming a discarded parent", []catalog.Entry{s("db1", f1, events.Full, ""),
			gone(s("db1", d1, events.Delta, f1), "upload failed"), s("db1", d2, events.Delta, d1)},
			d2, "error: its parent " + d1 + "-delta was discarded (upload failed)", d1},
		{"an incremental after a discarded full", []catalog.Entry{s("db1", f1, events.Full, ""),
			gone(s("db1", d1, events.Full, ""), "keystore copy failed"), s("db1", i1, events.Incremental, f1)},
			i1, "error: Db2 built it on " + d1 + "-full, which was discarded", d1},
		{"an incremental after a discarded delta builds on the full", []catalog.Entry{s("db1", f1, events.Full, ""),
			gone(s("db1", d1, events.Delta, f1), "upload failed"), s("db1", i1, events.Incremental, f1)},
			i1, f1 + "-full " + i1 + "-incremental", ""},
		{"a full after a discarded image", []catalog.Entry{s("db1", f1, events.Full, ""),
			gone(s("db1", d1, events.Delta, f1), "upload failed"), s("db1", f2, events.Full, "")},
			f2, f2 + "-full", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chain, err := catalog.Chain(tc.entries, tc.target)
			want, isErr := strings.CutPrefix(tc.want, "error: ")
			if !isErr {
				if err != nil || strings.Join(catalogtest.Names(chain), " ") != want {
					t.Fatalf("Chain = %v, %v; want %s", catalogtest.Names(chain), err, want)
				}
				return
			}
			var ce *catalog.ChainError
			if !errors.As(err, &ce) || !errors.Is(err, catalog.ErrBrokenChain) || ce.Discarded != tc.discarded || !strings.Contains(err.Error(), want) {
				t.Fatalf("Chain = %v, %v; want a *ChainError naming discarded %s, about %q", catalogtest.Names(chain), err, tc.discarded, want)
			}
		})
	}
	// PlanRestore passes over both the discarded image and the delta built on it.
	entries := []catalog.Entry{s("db1", f1, events.Full, ""), gone(s("db1", d1, events.Delta, f1), "upload failed"), s("db1", d2, events.Delta, f1)}
	p, err := catalog.PlanRestore(entries, time.Time{}, nil)
	if err != nil || p.Target != f1 {
		t.Fatalf("PlanRestore = %s, %v; want the full %s", p.Target, err, f1)
	}
	notes := strings.Join(p.Notes, "\n")
	for _, want := range []string{"skipped " + d2 + "-delta", "skipped " + d1 + "-delta", "discarded"} {
		if !strings.Contains(notes, want) {
			t.Errorf("plan notes lack %q:\n%s", want, notes)
		}
	}
}

type planCase struct {
	Case        string    `json:"case"`
	PointInTime time.Time `json:"point_in_time,omitzero"`
	Destroyed   []string  `json:"destroyed_key_versions,omitempty"`
	Missing     []string  `json:"missing_images,omitempty"`
	Target      string    `json:"target,omitempty"`
	Images      []string  `json:"images,omitempty"`
	RollForward string    `json:"roll_forward,omitempty"`
	Commands    []string  `json:"commands,omitempty"`
	Notes       []string  `json:"notes,omitempty"`
	Error       string    `json:"error,omitempty"`
}

// TestPlanRestoreWeekGolden plans restores over the three-week history: latest, points in time
// around the rotation, a destroyed key version, a broken chain, and before the first backup.
func TestPlanRestoreWeekGolden(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	cases := []planCase{
		{Case: "latest"},
		{Case: "during the rotation window: the last image before is the morning incremental", PointInTime: at("2024-03-13T10:00:00Z")},
		{Case: "the post-rotation full has not ended yet", PointInTime: at("2024-03-13T17:30:00Z")},
		{Case: "after the post-rotation full, v1 destroyed", PointInTime: at("2024-03-14T12:00:00Z"), Destroyed: []string{keyV1}},
		{Case: "before the rotation, v1 destroyed: nothing restorable", PointInTime: at("2024-03-12T12:00:00Z"), Destroyed: []string{keyV1}},
		{Case: "latest with v2 destroyed: back to the last v1 chain", Destroyed: []string{keyV2}},
		{Case: "a lost incremental breaks the deltas built on it", PointInTime: at("2024-03-21T20:00:00Z"), Missing: []string{"20240321010000"}},
		{Case: "before the first backup ended", PointInTime: at("2024-03-03T01:30:00Z")},
	}
	for i, c := range cases {
		entries := without(weekHistory(), c.Missing...)
		destroyed := map[string]bool{}
		for _, v := range c.Destroyed {
			destroyed[v] = true
		}
		avail := func(crn, version string) bool {
			if crn != catalogtest.KeyCRN {
				t.Errorf("keyAvailable called with %q", crn)
			}
			return !destroyed[version]
		}
		p, err := catalog.PlanRestore(entries, c.PointInTime, avail)
		if err != nil {
			if !errors.Is(err, catalog.ErrNoRestorableChain) {
				t.Errorf("%s: %v, want ErrNoRestorableChain", c.Case, err)
			}
			cases[i].Error = err.Error()
			continue
		}
		if !c.PointInTime.IsZero() && p.Images[len(p.Images)-1].EndedAt.After(c.PointInTime) {
			t.Errorf("%s: target ended after the point in time", c.Case)
		}
		want, err := catalog.Chain(entries, p.Target)
		if err != nil || strings.Join(catalogtest.Names(want), " ") != strings.Join(catalogtest.Names(p.Images), " ") {
			t.Errorf("%s: plan images %v are not Chain(target) %v (%v)", c.Case, catalogtest.Names(p.Images), catalogtest.Names(want), err)
		}
		cases[i].Target, cases[i].Images, cases[i].RollForward = p.Target, catalogtest.Names(p.Images), p.RollForward
		cases[i].Commands, cases[i].Notes = p.Commands, p.Notes
	}
	body, err := json.MarshalIndent(cases, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "week.plans.golden.json", append(body, '\n'))
}

func TestPlanRestoreNotes(t *testing.T) {
	s := catalogtest.Sample
	full := s("db1", "20240303010000", events.Full, "")
	full.Mode = events.Offline
	full.LogRange = catalog.LogRange{}
	delta := s("db1", "20240303090000", events.Delta, full.ImageTimestamp)
	delta.Verification = catalog.Verification{}
	delta.KeyVersion = ""
	delta.LogRange = catalog.LogRange{}
	ts := s("db1", "20240303120000", events.Full, "")
	ts.Scope, ts.Tablespaces = catalog.ScopeTablespace, []string{"TS1"}

	p, err := catalog.PlanRestore([]catalog.Entry{full, delta, ts}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Target != delta.ImageTimestamp {
		t.Errorf("target %s, want the delta (table space images are not restore targets)", p.Target)
	}
	notes := strings.Join(p.Notes, "\n")
	for _, want := range []string{"not checked", delta.Name() + " is not verified", delta.Name() + " does not record its key version", "log range not recorded"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	p, err = catalog.PlanRestore([]catalog.Entry{full}, time.Time{}, nil)
	if err != nil || p.Commands[0] != "RESTORE DATABASE db1 TAKEN AT 20240303010000" || !strings.Contains(strings.Join(p.Notes, "\n"), "WITHOUT ROLLING FORWARD") {
		t.Errorf("offline full alone: %+v, %v", p, err)
	}
	if _, err := catalog.PlanRestore(nil, time.Time{}, nil); !errors.Is(err, catalog.ErrNoRestorableChain) {
		t.Errorf("PlanRestore of nothing = %v, want ErrNoRestorableChain", err)
	}
}
