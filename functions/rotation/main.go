// Command rotation is keyguard's key-event handler (a Code Engine app on /events): key rotated,
// key state changed and Cloud Logs rotation alerts. See shared/rotation.
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
	err := runtime.Run(ctx, config.FnRotation, os.Getenv, func(d runtime.Deps) (map[string]edge.Handler, error) {
		return runtime.Routes(config.FnRotation, d)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rotation:", err)
		os.Exit(1)
	}
}
