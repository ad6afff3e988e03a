package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/shared/preflight"
	"github.com/keyguard-dev/keyguard/shared/runtime"
)

const preflightLong = `preflight proves the deployment the environment points at, end to end, in seconds, and
reports each check as OK, FAIL (with the reason and the fix) or SKIP (with why):

  credentials  an IAM token can be had (API key or trusted profile), and for whom
  cos          the bucket exists and is Key Protect encrypted (its root key active), versioned
               and not locked; this identity can put, get and create-only put under preflight/
               and delete, and cannot change the bucket's versioning (it writes back the status
               it read, so nothing changes either way)
  keyprotect   every key of the fleet policy is readable, active, and registered to the Db2 on
               Cloud instances that use it
  iam          the authorizations Db2 -> Key Protect, Object Storage -> Key Protect and Event
               Notifications -> Code Engine exist
  events       keyguard's source is enabled; a dev.keyguard.preflight probe, published once,
               reaches every function along its route (each records its receipt in the bucket);
               the scheduler had a tick lately; critical alerts reach a person
  executors    the runner job exists and a named job run of it (carrying the probe, a no-op)
               reaches the runner; each Db2 on Cloud instance answers its backup list; each
               host agent polled within its interval
  fleet        the fleet policy parses and every database maps to an executor

It reads the variables of the runner job (see keyguard --help) and, as the scheduler does,
KEYGUARD_KP_URL and KEYGUARD_KP_INSTANCE_ID, KEYGUARD_CE_PROJECT_ID, KEYGUARD_CE_REGION and
KEYGUARD_CE_RUNNER_JOB, and KEYGUARD_DB2SAAS_URL. Run it as an identity that may read the
bucket's configuration, the Event Notifications instance (Reader) and IAM policies (Viewer);
what it may not read is skipped. The scheduler runs the same checks with its own identity at
start and logs them.

Exit codes: 0 every check passed or was skipped; 1 a check failed (or the environment is
incomplete); 2 bad command line.`

func newPreflightCmd(a *app) *cobra.Command {
	var (
		asJSON                   bool
		budget, appWait, jobWait time.Duration
	)
	cmd := &cobra.Command{
		Use:     "preflight",
		Short:   "Prove the deployment's wiring and permissions end to end (OK / FAIL with the fix)",
		Long:    preflightLong,
		Example: "  keyguard preflight\n  keyguard preflight -json\n  keyguard preflight -budget 3m -job-wait 2m",
		Args:    args(0, 0, -1),
		RunE: func(cmd *cobra.Command, _ []string) error {
			build := a.preflight
			if build == nil {
				build = func() (preflight.Deployment, error) { return preflightFromEnv(a.getenv) }
			}
			pd, err := build()
			if err != nil {
				return err
			}
			r := preflight.Run(cmd.Context(), pd, preflight.Options{Budget: budget, AppWait: appWait, JobWait: jobWait})
			if asJSON {
				err = r.WriteJSON(a.out)
			} else {
				err = r.WriteTable(a.out)
			}
			if err != nil {
				return err
			}
			if !r.OK() {
				_, failed, _ := r.Counts()
				return fmt.Errorf("preflight %s: %d of %d checks failed", r.RunID, failed, len(r.Results))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&budget, "budget", preflight.DefaultBudget, "the whole run's time limit")
	cmd.Flags().DurationVar(&appWait, "app-wait", preflight.DefaultAppWait, "how long the apps' receipts of the probe may take")
	cmd.Flags().DurationVar(&jobWait, "job-wait", preflight.DefaultJobWait, "how long the job runs' receipts may take (a job run starts a container)")
	return cmd
}

// preflightFromEnv builds what the preflight checks from the environment, with an operator's
// identity.
func preflightFromEnv(getenv func(string) string) (preflight.Deployment, error) {
	c, err := runtime.LoadOperator(getenv)
	if err != nil {
		return preflight.Deployment{}, err
	}
	d, err := runtime.Build(c)
	if err != nil {
		return preflight.Deployment{}, err
	}
	d.Log = slog.New(slog.DiscardHandler)
	return c.PreflightDeployment(d, true)
}
