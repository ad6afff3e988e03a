package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/shared/check"
)

// exitCodeError ends a command with a given exit code once its output is printed (check's
// verdict).
type exitCodeError struct {
	code int
	msg  string
}

func (e *exitCodeError) Error() string { return e.msg }

func newCheckCmd(a *app) *cobra.Command {
	var asJSON, nagios bool
	var at string
	cmd := &cobra.Command{
		Use:   "check [db...]",
		Short: "Is each database restorable now? Exit 0 OK, 1 WARNING, 2 CRITICAL (a Nagios plugin)",
		Long: `check judges each database of the fleet policy (or those named), in the manner of barman check
and pgbackrest check:

  backup age               the last good backup against check.max_age (the RPO)
  restorable chains        restorable full chains against check.min_chains
  newest restorable point  every image of the newest restorable chain present in COS at the size
                           the catalog recorded, and every key version it needs usable in Key
                           Protect (asked when KEYGUARD_KP_URL and KEYGUARD_KP_INSTANCE_ID are set)
  drill                    the last restore drill's age and result
  rotation window          a window open past its maximum
  failures in a row        against alert_threshold and retry.max_attempts
  ticks                    the scheduler's newest heartbeat younger than two tick intervals
                           (check.tick_interval): a dead-man alarm when ticks stop

It prints a table, -json, or -nagios (a status line with performance data, then the databases
that are not OK), and exits with the gravest level: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (a
catalog that cannot be read). A bad command line also exits 2.`,
		Example: "  keyguard check\n  keyguard check payroll -nagios",
		Args:    args(0, -1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON && nagios {
				return usagef("%s: -json and -nagios exclude each other", cmd.CommandPath())
			}
			o, err := a.ops(needStore | needKeys)
			if err != nil {
				return err
			}
			if at != "" {
				t, err := parseAt(at)
				if err != nil {
					return usagef("%s: -now %q: %v", cmd.CommandPath(), at, err)
				}
				o.now = func() time.Time { return t.UTC() }
			}
			return o.check(cmd.Context(), args, asJSON, nagios)
		},
		ValidArgsFunction: completeDatabases(a),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&nagios, "nagios", false, "print the Nagios plugin format")
	cmd.Flags().StringVar(&at, "now", "", "judge as of this time instead of now (a replayed or simulated fleet, e.g. the local stack's clock)")
	return cmd
}

func (o *ops) check(ctx context.Context, names []string, asJSON, nagios bool) error {
	fleet, err := o.fleet.Fleet(ctx)
	if err != nil {
		return err
	}
	dbs := fleet.Databases
	if len(names) > 0 {
		dbs = nil
		for _, n := range names {
			db, ok := fleet.Database(n)
			if !ok {
				return unknownDatabase(n)
			}
			dbs = append(dbs, db)
		}
	}
	src := check.Sources{Objects: o.objs}
	if o.keys != nil {
		src.Keys = o.keys
	}
	obs, err := check.Gather(ctx, src, dbs, o.now())
	if err != nil {
		return err
	}
	results := make([]check.Result, len(obs))
	for i, ob := range obs {
		results[i] = check.Evaluate(ob)
	}
	switch {
	case asJSON:
		err = check.JSON(o.out, results)
	case nagios:
		err = check.Nagios(o.out, results, o.now())
	default:
		err = check.Table(o.out, results)
	}
	if err != nil {
		return err
	}
	if l := check.Worst(results); l != check.OK {
		return &exitCodeError{code: int(l), msg: fmt.Sprintf("check: %s", l)}
	}
	return nil
}
