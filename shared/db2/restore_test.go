package db2

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPlanRestore renders the commands of each kind of restore into
// testdata/restoreplan/plans.golden.json (go test -update rewrites it).
func TestPlanRestore(t *testing.T) {
	pit := time.Date(2026, 11, 24, 2, 15, 0, 0, time.UTC)
	cases := []struct {
		name string
		req  RestoreRequest
	}{
		{"in place, full, end of logs", RestoreRequest{Source: "sales", Dir: "/db2backup/sales", Target: "20261124010000", Replace: true, Online: true}},
		{"in place, chain, point in time, logs extracted", RestoreRequest{Source: "SALES", Dir: "/db2backup/sales", Target: "20261124020000",
			Incremental: true, LogTarget: "/db2backup/sales/logs", Replace: true, Online: true, PointInTime: pit}},
		{"into a new database, redirected", RestoreRequest{Source: "SALES", Into: "SCRATCH", Dir: "/db2backup/sales", Target: "20261124020000",
			Incremental: true, StoragePaths: []string{"/db2/scratch1", "/db2/scratch2"}, Online: true}},
		{"offline without rolling forward", RestoreRequest{Source: "ARCHIVE", Into: "ARCHIVE", Dir: "/db2backup/archive", Target: "20261124000000", WithoutRollForward: true}},
		{"online without rolling forward", RestoreRequest{Source: "SALES", Dir: "/db2backup/sales", Target: "20261124010000", WithoutRollForward: true, Online: true}},
		{"bad paths", RestoreRequest{Source: "SALES", Into: "not an alias", Dir: "relative", Target: "2026", LogTarget: "/with space"}},
	}
	type result struct {
		Name     string   `json:"name"`
		Commands []string `json:"commands,omitempty"`
		Abort    string   `json:"abort,omitempty"`
		Error    *errJSON `json:"error,omitempty"`
	}
	line := func(argv []string) string { return strings.Join(argv, " ") }
	var out []result
	for _, c := range cases {
		r := result{Name: c.name}
		cmds, err := PlanRestore(c.req)
		var e *Error
		switch {
		case err == nil:
			for _, c := range cmds.Restore {
				r.Commands = append(r.Commands, line(c))
			}
			if cmds.RollForward != nil {
				r.Commands = append(r.Commands, line(cmds.RollForward))
			}
			r.Abort = line(cmds.Abort)
		case errors.As(err, &e):
			r.Error = &errJSON{string(e.Class), e.Code, e.Reason, e.Msg}
		default:
			t.Fatalf("%s: %v is not an *Error", c.name, err)
		}
		out = append(out, r)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/restoreplan/plans.golden.json", append(b, '\n'))
}

func TestParseRollforward(t *testing.T) {
	for name, out := range samples(t, "rollforward") {
		t.Run(name, func(t *testing.T) {
			st, err := ParseRollforward(out)
			golden(t, goldenPath("rollforward", name), render(t, st, err))
		})
	}
}

func TestParseQuery(t *testing.T) {
	for name, out := range samples(t, "query") {
		t.Run(name, func(t *testing.T) {
			r, err := ParseQuery(out)
			golden(t, goldenPath("query", name), render(t, r, err))
		})
	}
}

func TestNewestArchivedLog(t *testing.T) {
	h, err := ParseHistory(samples(t, "history")["archive"])
	if err != nil {
		t.Fatal(err)
	}
	e, end, ok := h.NewestArchivedLog()
	if !ok || e.FirstLog != "S0000002.LOG" || !end.Equal(time.Date(2026, 11, 24, 2, 30, 0, 0, time.UTC)) {
		t.Fatalf("newest archived log %+v ends %s (%v)", e, end, ok)
	}
	if _, _, ok := (History{}).NewestArchivedLog(); ok {
		t.Fatal("an empty history has an archived log")
	}
}

func FuzzParseRollforward(f *testing.F) {
	f.Add("\n Rollforward status = not pending\n Last committed transaction = 2026-11-24-02.15.00.000000 UTC\nDB20000I  done\n")
	f.Add("SQL4970N  halted on log file \"S0000001.LOG\".")
	f.Fuzz(func(t *testing.T, out string) {
		_, _ = ParseRollforward(out)
		_, _ = ParseQuery(out)
	})
}
