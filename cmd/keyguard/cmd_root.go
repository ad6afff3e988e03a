package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Exit codes. Scripts rely on them; the root command's help lists them.
const (
	exitOK      = 0 // the command did what was asked
	exitFailure = 1 // it failed, or the rules refused it (the message says which and why)
	exitUsage   = 2 // the command line is wrong (the message and the usage say how)
	// keyguard check exits as a Nagios plugin: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
)

const rootLong = `keyguard operates a keyguard deployment: the state of each database, its catalog of backups,
on-demand backups, restores and restore plans, checks, retention and the fleet policy; "keyguard
preflight" proves the deployment's wiring and permissions end to end.

It reads the same environment as the runner job: KEYGUARD_COS_ENDPOINT, KEYGUARD_COS_BUCKET
(and KEYGUARD_COS_REGION, KEYGUARD_COS_PREFIX), COS credentials (KEYGUARD_COS_HMAC_KEY_ID and
KEYGUARD_COS_HMAC_SECRET, or KEYGUARD_COS_INSTANCE_CRN with KEYGUARD_API_KEY), and the fleet
policy from KEYGUARD_FLEET_FILE or the object KEYGUARD_FLEET_KEY (default config/fleet.yaml).
Only "backup create" and "restore" send anything: they also need KEYGUARD_EN_URL,
KEYGUARD_EN_INSTANCE_ID and KEYGUARD_EN_SOURCE_ID. "check" asks Key Protect when
KEYGUARD_KP_URL and KEYGUARD_KP_INSTANCE_ID are set. Try it on the local stack: "make serve"
prints the variables to export.

Flags go anywhere after the command's name, before or after its arguments, and take one dash
or two (-json or --json).

Exit codes: 0 done; 1 failed, or refused by the rules (the message says why); 2 bad command
line. "keyguard check" exits as a Nagios plugin: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.`

// usageError is a bad command line (exit code 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// errRefused marks a write the rules forbid (a deletion that would break a chain, a backup
// request a hold refused).
var errRefused = errors.New("refused")

// execute runs one command line and returns its exit code, printing errors to a.errOut.
func execute(ctx context.Context, args []string, a *app) int {
	cmd, err := run(ctx, args, a)
	var ue *usageError
	var ce *exitCodeError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &ue):
		fmt.Fprintf(a.errOut, "keyguard: %v\n\n%s", err, cmd.UsageString())
		return exitUsage
	default:
		fmt.Fprintln(a.errOut, "keyguard:", err)
		return exitFailure
	}
}

// run runs one command line and returns the command it ran and its error.
func run(ctx context.Context, args []string, a *app) (*cobra.Command, error) {
	root := newRoot(a)
	root.SetArgs(normalizeFlags(args, longFlags(root)))
	return root.ExecuteContextC(ctx)
}

// newRoot builds the command tree. Each subcommand lives in its own cmd_<name>.go.
func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "keyguard",
		Short:         "Operate keyguard: Db2 backups that survive Key Protect root-key rotation",
		Long:          rootLong,
		Version:       version(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE:          groupRunE("command"),
	}
	root.SetOut(a.out)
	root.SetErr(a.errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.SetVersionTemplate("keyguard {{.Version}}\n")
	root.AddCommand(newStatusCmd(a), newBackupCmd(a), newPlanRestoreCmd(a), newRestoreCmd(a), newCheckCmd(a), newPruneCmd(a), newFleetCmd(a), newPreflightCmd(a), newVersionCmd(a))
	return root
}

// groupRunE is the RunE of a command that only groups subcommands: it says what is missing or
// unknown, as a usage error.
func groupRunE(what string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cmd.SuggestionsMinimumDistance = 2
		var names []string
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				names = append(names, c.Name())
			}
		}
		if len(args) == 0 {
			return usagef("missing %s (%s)", what, strings.Join(names, ", "))
		}
		msg := fmt.Sprintf("unknown %s %q", what, args[0])
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
		} else {
			msg += fmt.Sprintf(" (%s)", strings.Join(names, ", "))
		}
		return usagef("%s", msg)
	}
}

// longFlags names every long flag of the tree (and help), for normalizeFlags.
func longFlags(root *cobra.Command) map[string]bool {
	names := map[string]bool{"help": true, "version": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { names[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { names[f.Name] = true })
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return names
}

// normalizeFlags rewrites "-name" and "-name=value" as "--name..." when name is a long flag, so
// that the single-dash style of Go's flag package (and of the documentation) works as well as
// pflag's. Arguments after "--" are left alone.
func normalizeFlags(args []string, long map[string]bool) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if long[name] {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

// args checks a command's positional arguments: lo to hi of them (hi < 0: no limit), the first
// dbs of which (dbs < 0: all) name databases.
func args(lo, hi, dbs int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch n := len(args); {
		case n < lo:
			return usagef("%s: missing arguments (usage: %s)", cmd.CommandPath(), cmd.UseLine())
		case hi >= 0 && n > hi:
			return usagef("%s: unexpected argument %q", cmd.CommandPath(), args[hi])
		}
		for i, a := range args {
			if dbs >= 0 && i >= dbs {
				break
			}
			if err := state.ValidateDatabase(a); err != nil {
				return usagef("%s: %v", cmd.CommandPath(), err)
			}
		}
		return nil
	}
}

// imageArg checks an image argument: a 14-digit Db2 timestamp, or "latest" when latestOK.
func imageArg(cmd *cobra.Command, ts string, latestOK bool) error {
	if latestOK && ts == latest {
		return nil
	}
	if !catalog.ValidTimestamp(ts) {
		want := "the 14 digits of a Db2 image timestamp (yyyymmddhhmmss)"
		if latestOK {
			want += ` or "latest"`
		}
		return usagef("%s: image %q: want %s", cmd.CommandPath(), ts, want)
	}
	return nil
}

// latest names the newest usable backup of a database where an image timestamp is expected.
const latest = "latest"
