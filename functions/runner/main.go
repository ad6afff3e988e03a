// Command runner is keyguard's backup runner: a Code Engine job run (or a process on the Db2
// host) that runs one self-managed Db2 backup from the backup.started event in ibmendata, verifies
// it, uploads it to COS, catalogs it and publishes the outcome. See shared/runner.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
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
		r := &runner.Runner{Fleet: d.Fleet, DB2: runner.Commands{Env: os.Environ()}, Upload: up, Catalog: catalog.New(d.Objects), Send: d.Send, Log: d.Log}
		return map[string]edge.Handler{config.PathEvents: r}, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		os.Exit(1)
	}
}
