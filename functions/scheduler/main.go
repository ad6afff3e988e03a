// Command scheduler is keyguard's tick handler (a Code Engine app): the Event Notifications
// periodic timer reaches it on /tick, on-demand backup requests on /events. It polls Key Protect,
// decides, and starts backups through the executor each database's policy names: the runner job
// (Code Engine job runs) for db2cli, the Db2 on Cloud API for db2saas, or the simulated Db2. See
// shared/scheduler.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/codeengine"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2saas"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/executor"
	"github.com/keyguard-dev/keyguard/shared/runtime"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := runtime.Run(ctx, config.FnScheduler, os.Getenv, func(d runtime.Deps) (map[string]edge.Handler, error) {
		c := d.Config
		auth, err := c.Authenticator()
		if err != nil {
			return nil, err
		}
		execs := map[string]scheduler.Executor{config.ExecSimulated: &executor.Simulated{Send: d.Send, Log: d.Log},
			config.ExecDb2CLI + "-" + config.RunnerHost: executor.Pull{}}
		if c.CEProjectID != "" {
			ce, err := codeengine.New(codeengine.Options{URL: codeengine.RegionURL(c.CERegion), ProjectID: c.CEProjectID, JobName: c.CERunnerJob, Authenticator: auth, Log: d.Log})
			if err != nil {
				return nil, err
			}
			execs[config.ExecDb2CLI] = ce
		}
		if c.Db2SaaSURL != "" {
			client, err := db2saas.New(db2saas.Options{URL: c.Db2SaaSURL, Authenticator: auth, Logger: d.Log})
			if err != nil {
				return nil, err
			}
			execs[config.ExecDb2SaaS] = &db2saas.Executor{Client: client, Log: d.Log, Instances: func(db string) (string, bool) {
				f, err := d.Fleet.Fleet(ctx)
				if err != nil {
					return "", false
				}
				pol, ok := f.Database(db)
				return pol.Instance, ok && pol.Executor == config.ExecDb2SaaS
			}}
		}
		s := &scheduler.Scheduler{Store: d.States, Fleet: d.Fleet, Execs: execs, Send: d.Send, Catalog: catalog.New(d.Objects), Log: d.Log}
		kp, err := c.Keys()
		if err != nil {
			return nil, err
		}
		if kp != nil {
			s.Keys = runtime.KeyWatcher{C: kp}
		}
		return map[string]edge.Handler{config.PathTick: s, config.PathEvents: scheduler.Requests{Scheduler: s}}, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}
