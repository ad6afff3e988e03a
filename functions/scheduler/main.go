// Command scheduler is keyguard's tick handler (a Code Engine app): the Event Notifications
// periodic timer reaches it on /tick, on-demand backup requests on /events. It polls Key Protect,
// decides, and starts backups through the executor each database's policy names: the runner job
// (Code Engine job runs) for db2cli, the Db2 on Cloud API for db2saas, the host agent's pull. See
// shared/scheduler.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/runtime"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := runtime.Run(ctx, config.FnScheduler, os.Getenv, func(d runtime.Deps) (map[string]edge.Handler, error) {
		execs, err := d.Config.Executors(ctx, d)
		if err != nil {
			return nil, err
		}
		d.Execs = execs
		return runtime.Routes(config.FnScheduler, d)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}
