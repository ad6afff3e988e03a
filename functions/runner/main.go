// Command runner is keyguard's backup runner for self-managed Db2: a Code Engine job run that
// runs one backup from the backup.started event in ibmendata, or, with KEYGUARD_RUNNER_POLL set,
// an agent on the Db2 host that pulls the runs the scheduler put in flight from the state objects
// (databases with runner: host), and their restore drills. Either way it verifies the image,
// uploads it to COS, catalogs it and publishes the outcome. See shared/runner.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/preflight"
	"github.com/keyguard-dev/keyguard/shared/restore"
	"github.com/keyguard-dev/keyguard/shared/runner"
	"github.com/keyguard-dev/keyguard/shared/runtime"
	"github.com/keyguard-dev/keyguard/shared/upload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := runtime.Run(ctx, config.FnRunner, os.Getenv, func(d runtime.Deps) (map[string]edge.Handler, error) {
		client, err := d.Config.COSClient()
		if err != nil {
			return nil, err
		}
		up, err := upload.New(client, d.Config.COSBucket, d.Config.COSPrefix, upload.Options{Logger: d.Log})
		if err != nil {
			return nil, err
		}
		r := &runner.Runner{Fleet: d.Fleet, DB2: runner.Commands{Env: os.Environ()}, Upload: up, Catalog: catalog.New(d.Objects), Send: d.Send, Log: d.Log, Objects: d.Objects}
		// Key Protect wraps the data key of keystore copies; without it a database with a local
		// keystore fails its backups rather than store the keystore in clear.
		keys, err := d.Config.Keys()
		if err != nil {
			return nil, err
		}
		if keys != nil {
			r.Keys = keys
		} else {
			d.Log.Warn("Key Protect is not configured: backups of databases with a local keystore will fail", "set", config.EnvKPURL+", "+config.EnvKPInstanceID)
		}
		if every := os.Getenv(config.EnvRunnerPoll); every != "" {
			// An agent on the Db2 host: pull runs from the state until stopped.
			interval, err := time.ParseDuration(every)
			if err != nil || interval < time.Second {
				return nil, fmt.Errorf("%s=%q: want a duration of at least 1s", config.EnvRunnerPoll, every)
			}
			var dbs []string
			if v := os.Getenv(config.EnvRunnerDatabases); v != "" {
				dbs = strings.Split(v, ",")
			}
			// The agent also runs the drills of its databases (the restore job's logic, here
			// where Db2 is), which it pulls from the state like runs.
			rs := &restore.Restorer{Fleet: d.Fleet, DB2: r.DB2, Catalog: catalog.New(d.Objects), Download: up, Send: d.Send,
				Marks: d.Objects, Leases: d.Objects, Archive: d.Objects, Log: d.Log}
			if keys != nil {
				rs.Keys = keys
			}
			p := &runner.Poller{Runner: r, States: d.States, Databases: dbs, Interval: interval, Restores: rs}
			// Each poll is recorded, so that keyguard preflight can tell the agent is alive.
			host, _ := os.Hostname()
			agent := preflight.AgentName(host)
			p.OnPoll = func(ctx context.Context, _ int, err error) {
				a := preflight.AgentPoll{Agent: agent, Databases: dbs, Interval: interval, At: time.Now()}
				if err != nil {
					a.Error = err.Error()
				}
				if err := preflight.RecordAgentPoll(ctx, d.Objects, a); err != nil {
					d.Log.Warn("record the agent's poll", "err", err)
				}
			}
			d.Log.Info("runner agent polling", "every", interval, "databases", dbs)
			return nil, p.Run(ctx)
		}
		return map[string]edge.Handler{config.PathEvents: r}, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		os.Exit(1)
	}
}
