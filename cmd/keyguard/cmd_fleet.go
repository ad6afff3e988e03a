package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
)

func newFleetCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "The fleet policy: validate a file, push it to the bucket, show the one in use",
		Long: `The fleet policy (YAML; shared/config/fleet.example.yaml documents every field) names the
databases, their keys, schedules, retention and executors. Deployed functions read it from the
object KEYGUARD_FLEET_KEY (default config/fleet.yaml) in the bucket, and re-read it within a
minute of a change.`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE("fleet subcommand"),
	}
	cmd.AddCommand(newFleetValidateCmd(a), newFleetPushCmd(a), newFleetShowCmd(a))
	return cmd
}

// loadFleetFile reads and validates a fleet policy file as a deployment loads it.
func loadFleetFile(file string) ([]byte, *config.Fleet, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	f, err := config.Load(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	return b, f, nil
}

// fleetSummary is the -json form of a fleet policy's databases.
type fleetSummary struct {
	Name      string                       `json:"name"`
	Executor  string                       `json:"executor"`
	Runner    string                       `json:"runner,omitempty"`
	Mode      events.Mode                  `json:"mode"`
	Size      int64                        `json:"size_bytes,omitempty"`
	KeyCRN    string                       `json:"key_crn"`
	Schedules map[events.BackupType]string `json:"schedules"`
	KeepFulls int                          `json:"keep_fulls"`
	KeepDays  int                          `json:"keep_days"`
}

func summarize(f *config.Fleet) []fleetSummary {
	out := make([]fleetSummary, 0, len(f.Databases))
	for _, d := range f.Databases {
		out = append(out, fleetSummary{Name: d.Name, Executor: d.Executor, Runner: d.Runner, Mode: d.Mode, Size: int64(d.Size), KeyCRN: d.KeyCRN,
			Schedules: d.Schedules, KeepFulls: d.Retention.KeepFulls, KeepDays: d.Retention.KeepDays})
	}
	return out
}

// printFleet prints one line per database of f.
func (o *ops) printFleet(f *config.Fleet) error {
	tw := o.table()
	fmt.Fprintln(tw, "DATABASE\tEXECUTOR\tMODE\tSIZE\tKEY\tSCHEDULES\tRETENTION")
	for _, s := range summarize(f) {
		exec := s.Executor
		if s.Runner != "" {
			exec += " (" + s.Runner + ")"
		}
		sz := "-"
		if s.Size > 0 {
			sz = size(s.Size)
		}
		var sched []string
		for _, t := range []events.BackupType{events.Full, events.Incremental, events.Delta, events.Tablespace} {
			if c, ok := s.Schedules[t]; ok {
				sched = append(sched, fmt.Sprintf("%s %q", t, c))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d fulls, %d days\n", s.Name, exec, s.Mode, sz, short(keyID(s.KeyCRN)),
			strings.Join(sched, ", "), s.KeepFulls, s.KeepDays)
	}
	return tw.Flush()
}

// names lists f's database names, sorted.
func names(f *config.Fleet) []string {
	var n []string
	if f == nil {
		return n
	}
	for _, d := range f.Databases {
		n = append(n, d.Name)
	}
	slices.Sort(n)
	return n
}
