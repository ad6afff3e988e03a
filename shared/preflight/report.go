package preflight

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is a check's verdict.
type Status string

// Statuses.
const (
	// OK: the check proved what it checks.
	OK Status = "OK"
	// Fail: the check found something wrong; Result.Fix says what to do.
	Fail Status = "FAIL"
	// Skip: the check was not run (not configured here, or it needs access this identity does
	// not hold); Result.Detail says why.
	Skip Status = "SKIP"
)

// Result is one line of a report.
type Result struct {
	// Area groups checks: credentials, cos, keyprotect, iam, events, executors, fleet.
	Area string `json:"area"`
	// Check names what was checked, e.g. "bucket keyguard-data" or "route rotation /events".
	Check  string `json:"check"`
	Status Status `json:"status"`
	// Detail is what was found (OK), what is wrong (FAIL) or why nothing was checked (SKIP).
	Detail string `json:"detail"`
	// Fix says what to do about a failure.
	Fix string `json:"fix,omitempty"`
	// Took is how long the check took.
	Took time.Duration `json:"took_ns"`
}

// Report is the outcome of one preflight run.
type Report struct {
	RunID string `json:"run_id"`
	// Identity is who the checks ran as (the IAM token's subject), when known.
	Identity string        `json:"identity,omitempty"`
	Started  time.Time     `json:"started"`
	Took     time.Duration `json:"took_ns"`
	Results  []Result      `json:"results"`
}

// Counts returns how many results have each status.
func (r Report) Counts() (ok, failed, skipped int) {
	for _, x := range r.Results {
		switch x.Status {
		case OK:
			ok++
		case Fail:
			failed++
		case Skip:
			skipped++
		}
	}
	return ok, failed, skipped
}

// OK reports whether no check failed.
func (r Report) OK() bool {
	_, failed, _ := r.Counts()
	return failed == 0
}

// Failed returns the failed results.
func (r Report) Failed() []Result {
	var out []Result
	for _, x := range r.Results {
		if x.Status == Fail {
			out = append(out, x)
		}
	}
	return out
}

// Summary is one line: the run, who it ran as, the counts and the time taken.
func (r Report) Summary() string {
	ok, failed, skipped := r.Counts()
	who := ""
	if r.Identity != "" {
		who = " as " + r.Identity
	}
	verdict := "all checks passed"
	if failed > 0 {
		verdict = fmt.Sprintf("%d FAILED", failed)
	}
	return fmt.Sprintf("keyguard preflight %s%s: %s (%d ok, %d failed, %d skipped) in %s",
		r.RunID, who, verdict, ok, failed, skipped, r.Took.Round(time.Millisecond))
}

// WriteTable writes the report as an aligned table, the fix of each failure on the line below
// it, then the summary line.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AREA\tCHECK\tSTATUS\tDETAIL")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.Area, x.Check, x.Status, oneLine(x.Detail))
		if x.Status == Fail && x.Fix != "" {
			fmt.Fprintf(tw, "\t\t\tfix: %s\n", oneLine(x.Fix))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, r.Summary())
	return err
}

// WriteJSON writes the report as one indented JSON object.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
