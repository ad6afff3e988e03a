// Command scheduler is keyguard's tick handler (a Code Engine app fed by the Event Notifications
// periodic timer on /tick). See shared/scheduler.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/executor"
	"github.com/keyguard-dev/keyguard/shared/runtime"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := runtime.Run(ctx, config.FnScheduler, os.Getenv, func(d runtime.Deps) (map[string]edge.Handler, error) {
		if d.Config.Executor != config.ExecSimulated {
			return nil, fmt.Errorf("executor %q is not available in this build (simulated only)", d.Config.Executor)
		}
		sim := &executor.Simulated{Send: d.Send, Log: d.Log}
		h := &scheduler.Scheduler{Store: d.States, Fleet: d.Fleet, Execs: map[string]scheduler.Executor{config.ExecSimulated: sim}, Send: d.Send, Log: d.Log}
		return map[string]edge.Handler{config.PathTick: h}, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}
