package db2

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
)

func TestParseHistory(t *testing.T) {
	type want struct {
		err     wantErr
		entries int
		check   func(t *testing.T, h History)
	}
	cases := map[string]want{
		"none": {entries: 0},
		"chain": {entries: 6, check: func(t *testing.T, h History) {
			if h.Database != "SALES" {
				t.Errorf("database %q", h.Database)
			}
			b := h.Backups()
			var got []string
			for _, e := range b {
				got = append(got, e.Timestamp+"-"+string(e.Type)+"-"+string(e.Mode)+"-"+e.Object)
			}
			want := []string{"20261122020011-full-online-D", "20261123020006-incremental-online-D", "20261123140004-delta-online-D",
				"20261123160002-full-offline-P", "20261124020009-delta-offline-D"}
			if !slices.Equal(got, want) {
				t.Errorf("backups %v\nwant     %v", got, want)
			}
			first := h.Entries[0]
			if first.Sequence != 1 || h.Entries[1].Sequence != 2 || first.FirstLog != "S0000101.LOG" || first.End != "20261122024107" ||
				first.EID != 211 || first.Location != "/db2backup/sales1" || first.Status != "A" || first.Device != "D" ||
				!slices.Equal(first.Tablespaces, []string{"SYSCATSPACE", "USERSPACE1", "SYSTOOLSPACE"}) {
				t.Errorf("first entry %+v", first)
			}
			if e, ok := h.Base(events.Delta); !ok || e.Timestamp != "20261124020009" {
				t.Errorf("delta base %+v %v", e, ok)
			}
			// The table space full after the database full is what Db2 builds USERSPACE1's
			// changes on.
			if e, ok := h.Base(events.Incremental); !ok || e.Timestamp != "20261123160002" || e.Object != ObjTablespace {
				t.Errorf("incremental base %+v %v", e, ok)
			}
			if _, ok := h.Base(events.Full); ok {
				t.Error("a base for a full backup")
			}
			if h.RestoredAfter("20261122020011") {
				t.Error("no restore is listed")
			}
		}},
		"restore": {entries: 2, check: func(t *testing.T, h History) {
			r := h.Entries[1]
			if r.Op != OpRestore || r.Device != "" || r.BackupID != "20261124020009" || r.LastLog != "S0000003.LOG" || r.Location != "" || r.Type != events.Full {
				t.Errorf("restore entry %+v", r)
			}
			if !h.RestoredAfter("20261124020009") || !h.RestoredAfter("20261101000000") {
				t.Error("the restore after the backup is not seen")
			}
			if len(h.Backups()) != 1 {
				t.Errorf("backups %+v", h.Backups())
			}
		}},
		"failed": {entries: 2, check: func(t *testing.T, h History) {
			if !h.Entries[1].Failed() || h.Entries[1].SQLCode != -2419 || h.Entries[0].Failed() {
				t.Errorf("entries %+v", h.Entries)
			}
			if e, ok := h.Base(events.Delta); !ok || e.Timestamp != "20261124020009" {
				t.Errorf("a failed backup is no base: %+v", e)
			}
		}},
		"other-operations": {entries: 3, check: func(t *testing.T, h History) {
			if h.Entries[0].Op != "L" || h.Entries[1].Op != "G" || h.Entries[1].Sequence != 0 || len(h.Backups()) != 1 {
				t.Errorf("entries %+v", h.Entries)
			}
			if len(h.Entries[0].Tablespaces) != 0 {
				t.Errorf("a load's table spaces are not a backup's: %v", h.Entries[0].Tablespaces)
			}
		}},
		"archive": {entries: 3, check: func(t *testing.T, h History) {
			if e := h.Entries[2]; e.Op != OpArchiveLog || e.TypeCode != "1" || e.FirstLog != "S0000002.LOG" || e.End != "20261124023000" || len(h.Backups()) != 0 {
				t.Errorf("entries %+v", h.Entries)
			}
		}},
		"crlf":      {entries: 1},
		"truncated": {err: unrec},
		"garbage":   {err: unrec},
		"not-found": {err: wantErr{class: events.Configuration, code: "SQL1013N"}},
	}
	names, in := sortedNames(t, "history", cases)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			h, err := ParseHistory(in[name])
			golden(t, goldenPath("history", name), render(t, h, err))
			w := cases[name]
			if !checkErr(t, err, w.err) {
				return
			}
			if len(h.Entries) != w.entries {
				t.Fatalf("%d entries, want %d", len(h.Entries), w.entries)
			}
			if w.check != nil {
				w.check(t, h)
			}
		})
	}
}

func TestListHistoryCommand(t *testing.T) {
	var got []string
	r := RunnerFunc(func(_ context.Context, argv []string) (string, int, error) {
		got = argv
		return samples(t, "history")["none"], 0, nil
	})
	ctx := context.Background()
	if _, err := ListHistory(ctx, r, "SALES", ""); err != nil || strings.Join(got, " ") != "db2 list history backup all for SALES" {
		t.Errorf("ListHistory all: %q %v", got, err)
	}
	if _, err := ListHistory(ctx, r, "SALES", "20261123"); err != nil || strings.Join(got, " ") != "db2 list history backup since 20261123 for SALES" {
		t.Errorf("ListHistory since: %q %v", got, err)
	}
	for _, bad := range [][2]string{{"SA LES", ""}, {"SALES", "2026-11"}, {"SALES", "20"}} {
		if _, err := ListHistory(ctx, r, bad[0], bad[1]); ClassOf(err) != events.Permanent {
			t.Errorf("ListHistory(%q, %q) = %v, want a permanent refusal", bad[0], bad[1], err)
		}
	}
}
