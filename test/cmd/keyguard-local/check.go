package main

import (
	"context"
	"fmt"
	"io"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/check"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/test/stack"
)

// describeRestore is the timeline line of a restore drill's request or outcome.
func describeRestore(p events.Payload) string {
	switch v := p.(type) {
	case *events.RestoreRequested:
		what := "restore"
		if v.Drill {
			what = "drill"
		}
		return fmt.Sprintf("%-8s %s %s: restore the newest restorable point into %s, probe, drop", v.Database, what, v.ID, v.Into)
	case *events.RestoreCompleted:
		if !v.Success {
			return fmt.Sprintf("%-8s restore %s FAILED (%s %s): %s", v.Database, v.ID, v.Class, v.Code, v.Message)
		}
		return fmt.Sprintf("%-8s restore %s into %s: %d image(s) restored, probe %s, measured restore time (RTO) %.3fs", v.Database, v.ID, v.Into,
			len(v.Images), orDash(v.ProbeResult), v.Seconds)
	}
	return ""
}

// checkReport prints the drills and what keyguard check says of the fleet at the end of the
// scenario (as of the simulated clock), then removes the newest image of the first
// self-managed database from the bucket and checks again: that database turns CRITICAL.
func checkReport(ctx context.Context, out io.Writer, st *stack.Stack) error {
	for _, db := range st.Fleet.Databases {
		s, err := st.State(ctx, db.Name)
		if err != nil {
			return err
		}
		if d := s.LastDrill; d != nil {
			verdict := fmt.Sprintf("restored in %.3fs (measured RTO)", d.Seconds)
			if !d.Success {
				verdict = "FAILED (" + d.Code + ")"
			}
			fmt.Fprintf(out, "  %-8s drill %s at %s: %s\n", db.Name, d.ID, stamp(d.At), verdict)
		}
	}
	run := func(title string) error {
		obs, err := check.Gather(ctx, check.Sources{Objects: st.Objects, Keys: st.Keys}, st.Fleet.Databases, st.Clock.Now())
		if err != nil {
			return err
		}
		results := make([]check.Result, len(obs))
		for i, o := range obs {
			results[i] = check.Evaluate(o)
		}
		fmt.Fprintf(out, "\n%s: keyguard check says %s (exit %d)\n", title, check.Worst(results), check.Worst(results))
		return check.Table(out, results)
	}
	if err := run("check at the end of the week"); err != nil {
		return err
	}
	for _, db := range st.Fleet.Databases {
		if db.Executor != config.ExecDb2CLI {
			continue
		}
		entries, err := catalog.New(st.Objects).List(ctx, db.Name)
		if err != nil || len(entries) == 0 {
			return err
		}
		newest := entries[len(entries)-1]
		for _, o := range newest.Images {
			if err := st.Objects.Delete(ctx, o.Key); err != nil {
				return err
			}
		}
		return run(fmt.Sprintf("check after the images of %s %s were removed from the bucket", db.Name, newest.Name()))
	}
	return nil
}
