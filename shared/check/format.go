package check

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Table writes one block per database: its level, then each check.
func Table(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		point := "none"
		if !r.NewestPoint.IsZero() {
			point = r.NewestPoint.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\tnewest restorable point %s\n", r.Database, r.Level, point)
		for _, it := range r.Items {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", it.Name, it.Level, it.Message)
		}
	}
	return tw.Flush()
}

// JSON writes the results as an object with the overall level.
func JSON(w io.Writer, results []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Level     Level    `json:"level"`
		Databases []Result `json:"databases"`
	}{Worst(results), results})
}

// Nagios writes the Nagios plugin format: one status line ("KEYGUARD <LEVEL> - ..." with
// performance data: per database its level and the newest restorable point's age in seconds),
// then one line per database that is not OK. The exit code is Worst(results).
func Nagios(w io.Writer, results []Result, now time.Time) error {
	count := map[Level]int{}
	for _, r := range results {
		count[r.Level]++
	}
	worst := Worst(results)
	var perf []string
	for _, r := range results {
		perf = append(perf, fmt.Sprintf("'%s_level'=%d;1;2", r.Database, int(r.Level)))
		if !r.NewestPoint.IsZero() {
			perf = append(perf, fmt.Sprintf("'%s_restorable_age'=%.0fs", r.Database, now.Sub(r.NewestPoint).Seconds()))
		}
	}
	if _, err := fmt.Fprintf(w, "KEYGUARD %s - %d database(s): %d critical, %d warning, %d unknown, %d ok | %s\n", worst, len(results),
		count[Critical], count[Warning], count[Unknown], count[OK], strings.Join(perf, " ")); err != nil {
		return err
	}
	for _, r := range results {
		if r.Level == OK {
			continue
		}
		var why []string
		for _, it := range r.Items {
			if it.Level != OK {
				why = append(why, it.Name+": "+it.Message)
			}
		}
		if _, err := fmt.Fprintf(w, "%s %s: %s\n", r.Database, r.Level, strings.Join(why, "; ")); err != nil {
			return err
		}
	}
	return nil
}
