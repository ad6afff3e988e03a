package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/keyguard-dev/keyguard/test/sim"
)

const simulateUsage = `usage: keyguard-local simulate [flags]

Plays keyguard's handlers over a simulated year (or -days) of a fleet of databases, with key
rotations, backup failures, lost, duplicated and late notifications, COS and Key Protect faults,
crashes and operators, in virtual time from a seed, checking keyguard's invariants at every
step; and, over the same trace, the cron script keyguard replaces. Prints the violations and the
side-by-side table; exits 1 when an invariant was violated.

flags:
`

// simulate is the simulate command.
func simulate(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), simulateUsage)
		fs.PrintDefaults()
	}
	seed := fs.Uint64("seed", 1, "seed of the run (with -seeds, the first)")
	seeds := fs.Int("seeds", 1, "play this many seeds: seed, seed+1, ...")
	days := fs.Int("days", sim.DefaultDays, "simulated days")
	dbs := fs.Int("databases", sim.DefaultDatabases, "databases in the fleet")
	faults := fs.String("faults", sim.DefaultFaults, "fault profile: none, typical or hostile")
	tick := fs.Duration("tick", sim.DefaultTick, "interval of the periodic timer's ticks")
	start := fs.String("start", sim.DefaultStart.Format("2006-01-02"), "first day (UTC)")
	asJSON := fs.Bool("json", false, "print the report(s) as JSON")
	svg := fs.String("svg", "", "write an SVG timeline per database and an index.html into this directory (one seed)")
	keepGoing := fs.Bool("keep-going", false, "play the whole run after a violation (by default it stops at the first)")
	trace := fs.Bool("trace", false, "print every step to standard error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("simulate takes no arguments (got %q)", fs.Args())
	}
	first, err := time.Parse("2006-01-02", *start)
	if err != nil {
		return fmt.Errorf("-start: %w", err)
	}
	if *seeds < 1 {
		return fmt.Errorf("-seeds must be at least 1")
	}
	// A run allocates many short-lived objects and keeps a small heap: collect less often.
	debug.SetGCPercent(400)
	var reports []*sim.Report
	violations := 0
	began := time.Now()
	for n := range *seeds {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		o := sim.Options{Seed: *seed + uint64(n), Days: *days, Databases: *dbs, Faults: *faults, Tick: *tick, Start: first, KeepGoing: *keepGoing}
		if *trace {
			o.Trace = os.Stderr
		}
		r, err := sim.Run(o)
		if err != nil {
			return err
		}
		violations += len(r.Violations)
		reports = append(reports, r)
		switch {
		case *asJSON:
		case *seeds == 1:
			if err := r.WriteText(out); err != nil {
				return err
			}
		default:
			status := "all invariants held"
			if len(r.Violations) > 0 {
				status = r.Violations[0].String()
			}
			fmt.Fprintf(out, "seed %d: %s (%d steps, %.1fs, digest %s)\n", r.Seed, status, r.Steps, r.WallSecs, r.Digest[:16])
		}
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		var v any = reports
		if len(reports) == 1 {
			v = reports[0]
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	} else if *seeds > 1 {
		fmt.Fprintf(out, "%d seeds, %d violation(s), %.1fs\n", *seeds, violations, time.Since(began).Seconds())
	}
	if *svg != "" {
		if err := reports[0].WriteSVG(*svg); err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintf(out, "timelines: %s/index.html\n", *svg)
		}
	}
	if violations > 0 {
		return fmt.Errorf("%d invariant violation(s)", violations)
	}
	return nil
}
