// Command completion is keyguard's backup-outcome handler (a Code Engine app on /events):
// backup completed and backup failed, then chain-safe retention of the catalog. See
// shared/completion.
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
	err := runtime.Run(ctx, config.FnCompletion, os.Getenv, func(d runtime.Deps) (map[string]edge.Handler, error) {
		return runtime.Routes(config.FnCompletion, d)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "completion:", err)
		os.Exit(1)
	}
}
