package runner

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2"
)

// historyOut renders `db2 list history backup` output: each op is "B <type code> <timestamp>"
// or "R <type code> <timestamp>".
func historyOut(ops ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n                    List History File for SALES\n\nNumber of matching file entries = %d\n\n", len(ops))
	for i, op := range ops {
		f := strings.Fields(op)
		dev := "D"
		if f[0] == "R" {
			dev = " "
		}
		fmt.Fprintf(&b, "\n Op Obj Timestamp+Sequence Type Dev Earliest Log Current Log  Backup ID\n")
		fmt.Fprintf(&b, " -- --- ------------------ ---- --- ------------ ------------ --------------\n")
		fmt.Fprintf(&b, "  %s  D  %s001    %s    %s  S%07d.LOG S%07d.LOG\n", f[0], f[2], f[1], dev, i, i)
		fmt.Fprintf(&b, " ----------------------------------------------------------------------------\n  Contains 1 tablespace(s):\n\n 00001 SYSCATSPACE\n")
		fmt.Fprintf(&b, " ----------------------------------------------------------------------------\n    Comment: DB2\n Start Time: %s\n   End Time: %s\n     Status: A\n", f[2], f[2])
		fmt.Fprintf(&b, " ----------------------------------------------------------------------------\n  EID: %d Location: /db2backup\n", i+1)
	}
	return b.String()
}

// TestBasis: what a run builds on, from Db2's history and the catalog.
func TestBasis(t *testing.T) {
	const (
		f1 = "20261122020000"
		i1 = "20261123020000"
		d1 = "20261123140000"
		d2 = "20261124020000"
	)
	s := catalogtest.Sample
	full, inc, delta := s("sales", f1, events.Full, ""), s("sales", i1, events.Incremental, f1), s("sales", d1, events.Delta, i1)
	for _, e := range []*catalog.Entry{&full, &inc, &delta} {
		e.KeyVersion = "v1"
	}
	oldKey := full
	oldKey.KeyVersion = "v0"
	gone := catalogtest.Discard(delta, "upload image: 503 Slow Down")
	orphan := s("sales", d1, events.Delta, "20261122140000") // its parent is not cataloged
	orphan.KeyVersion = "v1"
	tsFull := s("sales", d1, events.Full, "")
	tsFull.KeyVersion, tsFull.Scope, tsFull.Tablespaces = "v1", catalog.ScopeTablespace, []string{"USERSPACE1"}
	cases := []struct {
		name    string
		typ     events.BackupType
		entries []catalog.Entry
		out     string // db2 list history output
		want    string // "full" or the parent's timestamp
		notes   []string
	}{
		{"incremental on the cataloged full", events.Incremental, []catalog.Entry{full}, historyOut("B N " + f1), f1, nil},
		{"incremental ignores later deltas", events.Incremental, []catalog.Entry{full, inc, delta}, historyOut("B N "+f1, "B O "+i1, "B E "+d1), f1, nil},
		{"delta on the latest backup", events.Delta, []catalog.Entry{full, inc, delta}, historyOut("B N "+f1, "B O "+i1, "B E "+d1), d1, nil},
		{"delta after a discarded delta", events.Delta, []catalog.Entry{full, inc, gone}, historyOut("B N "+f1, "B O "+i1, "B E "+d1), "full",
			[]string{"full backup instead of delta: Db2 would build the delta on image " + d1 + " (delta), which is discarded in the catalog (upload image: 503 Slow Down)"}},
		{"delta after an uncataloged delta", events.Delta, []catalog.Entry{full, inc}, historyOut("B N "+f1, "B O "+i1, "B E "+d1), "full",
			[]string{"1 backup(s) that are not in the catalog", d1 + " (online delta)", "which is not in the catalog"}},
		{"incremental after an uncataloged delta", events.Incremental, []catalog.Entry{full, inc}, historyOut("B N "+f1, "B O "+i1, "B E "+d1), f1,
			[]string{"not chained on: " + d1 + " (online delta)"}},
		{"full reports what keyguard did not take", events.Full, []catalog.Entry{full}, historyOut("B N "+f1, "B E "+d1), "full",
			[]string{"not chained on: " + d1}},
		{"another key version", events.Incremental, []catalog.Entry{oldKey}, historyOut("B N " + f1), "full",
			[]string{`taken under key version "v0", not the current "v1"`}},
		{"a restore after the base", events.Delta, []catalog.Entry{full}, historyOut("B N "+f1, "R F "+d2), "full",
			[]string{"the database was restored after it"}},
		{"a base with a broken chain", events.Delta, []catalog.Entry{full, orphan}, historyOut("B N "+f1, "B E "+d1), "full",
			[]string{"whose restore chain is broken"}},
		{"no backup in the history", events.Delta, nil, historyOut(), "full", []string{"holds no backup to build the delta on"}},
		{"a base of another scope", events.Delta, []catalog.Entry{full, tsFull}, historyOut("B N "+f1, "B N "+d1), "full",
			[]string{"a backup of table spaces USERSPACE1"}},
		{"history unreadable", events.Delta, []catalog.Entry{full},
			"SQL1013N  The database alias name or database name \"SALES\" could not be \nfound.  SQLSTATE=42705\n", "full",
			[]string{"Db2's history could not be read", "SQL1013N"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var argv []string
			r := &Runner{Log: slog.New(slog.DiscardHandler), DB2: db2.RunnerFunc(func(_ context.Context, a []string) (string, int, error) {
				argv = a
				return tc.out, 0, nil
			})}
			db := config.Database{Name: "sales", Alias: "SALES"}
			run := events.BackupStarted{Database: "sales", RunID: "r", Type: tc.typ, KeyVersion: "v1"}
			b := r.basis(context.Background(), db, run, nil, tc.entries)
			got := string(b.typ)
			if b.parent != nil {
				got = b.parent.ImageTimestamp
			}
			if got != tc.want || (b.typ == events.Full) != (tc.want == "full") {
				t.Errorf("basis = %s (type %s), want %s; notes %q", got, b.typ, tc.want, b.notes)
			}
			notes := strings.Join(b.notes, "\n")
			for _, n := range tc.notes {
				if !strings.Contains(notes, n) {
					t.Errorf("notes lack %q:\n%s", n, notes)
				}
			}
			if len(tc.notes) == 0 && len(b.notes) > 0 {
				t.Errorf("unexpected notes %q", b.notes)
			}
			// The history is read from a day before the newest full the catalog holds.
			if len(tc.entries) > 0 && !strings.Contains(strings.Join(argv, " "), "since 20261121020000 for SALES") {
				t.Errorf("history command %q", argv)
			}
		})
	}
}
