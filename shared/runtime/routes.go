package runtime

import (
	"context"
	"fmt"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/codeengine"
	"github.com/keyguard-dev/keyguard/shared/completion"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2saas"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/executor"
	"github.com/keyguard-dev/keyguard/shared/rotation"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
)

// Routes builds the handlers of one of the apps (config.Apps) from its dependencies: the one
// composition of handlers, used by the functions' mains and by the local stack alike. The
// scheduler starts runs with d.Execs. Every handler records a deployment preflight's probe
// (WithPreflight).
func Routes(fn string, d Deps) (map[string]edge.Handler, error) {
	routes, err := routes(fn, d)
	if err != nil {
		return nil, err
	}
	return WithPreflight(fn, d, routes, false), nil
}

func routes(fn string, d Deps) (map[string]edge.Handler, error) {
	cat := catalog.NewWithOptions(d.Objects, catalog.Options{Clock: d.Clock}) // the index stamps intents and deletions with the injected clock
	switch fn {
	case config.FnScheduler:
		s := &scheduler.Scheduler{Store: d.States, Fleet: d.Fleet, Execs: d.Execs, Send: d.Send, Catalog: cat, Clock: d.Clock, Log: d.Log, Beats: d.Objects,
			Workers: d.Workers, Timer: d.Timer, Budget: d.Budget}
		if d.Keys != nil {
			s.Keys = d.Keys
		}
		return map[string]edge.Handler{config.PathTick: s, config.PathEvents: scheduler.Requests{Scheduler: s}}, nil
	case config.FnRotation:
		return map[string]edge.Handler{config.PathEvents: &rotation.Handler{Store: d.States, Fleet: d.Fleet, Send: d.Send, Catalog: cat, Clock: d.Clock, Log: d.Log,
			Workers: d.Workers, Timer: d.Timer, Budget: d.Budget}}, nil
	case config.FnCompletion:
		return map[string]edge.Handler{config.PathEvents: &completion.Handler{Store: d.States, Fleet: d.Fleet, Send: d.Send, Catalog: cat, Clock: d.Clock, Log: d.Log}}, nil
	}
	return nil, fmt.Errorf("no routes for function %q", fn)
}

// Executors builds the deployment's executors from its configuration: the runner job on Code
// Engine for db2cli databases (when a project is configured), the Db2 on Cloud API for db2saas
// databases (when its URL is set), and the pull executor for db2cli databases whose runner is
// an agent on the Db2 host. A database whose executor is not built here fails its start with a
// configuration error.
func (c Config) Executors(ctx context.Context, d Deps) (map[string]scheduler.Executor, error) {
	execs := map[string]scheduler.Executor{config.ExecDb2CLI + "-" + config.RunnerHost: executor.Pull{}}
	if c.CEProjectID == "" && c.Db2SaaSURL == "" {
		return execs, nil
	}
	auth, err := c.Authenticator()
	if err != nil {
		return nil, err
	}
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
		execs[config.ExecDb2SaaS] = &db2saas.Executor{Client: client, Log: d.Log, Clock: d.Clock, Instances: FleetInstances(ctx, d.Fleet)}
	}
	return execs, nil
}

// FleetInstances resolves a db2saas database to its instance CRN through the current fleet
// policy.
func FleetInstances(ctx context.Context, fleet config.Source) func(string) (string, bool) {
	return func(db string) (string, bool) {
		f, err := fleet.Fleet(ctx)
		if err != nil {
			return "", false
		}
		return db2saas.InstancesFromFleet(f)(db)
	}
}
