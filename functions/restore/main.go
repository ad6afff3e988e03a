// Command restore is keyguard's restore job: a Code Engine job run (or a process on the Db2
// host) that restores one self-managed Db2 database from the restore.requested event in
// ibmendata: it downloads the image chain from COS, checks it against the catalog, runs RESTORE
// and ROLLFORWARD and publishes restore.completed. See shared/restore.
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
	"github.com/keyguard-dev/keyguard/shared/restore"
	"github.com/keyguard-dev/keyguard/shared/runner"
	"github.com/keyguard-dev/keyguard/shared/runtime"
	"github.com/keyguard-dev/keyguard/shared/upload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := runtime.Run(ctx, config.FnRestore, os.Getenv, func(d runtime.Deps) (map[string]edge.Handler, error) {
		client, err := d.Config.COSClient()
		if err != nil {
			return nil, err
		}
		up, err := upload.New(client, d.Config.COSBucket, d.Config.COSPrefix, upload.Options{Logger: d.Log})
		if err != nil {
			return nil, err
		}
		r := &restore.Restorer{Fleet: d.Fleet, DB2: runner.Commands{Env: os.Environ()}, Catalog: catalog.New(d.Objects), Download: up,
			Send: d.Send, Marks: d.Objects, Leases: d.Objects, Archive: d.Objects, Log: d.Log}
		// Key Protect: the key versions a restore needs are checked before it starts, and it
		// unwraps the data key of sealed keystore copies. A restore job without it would restore
		// blind, so it does not start.
		keys, err := d.Config.Keys()
		if err != nil {
			return nil, err
		}
		if keys == nil {
			return nil, fmt.Errorf("the restore job checks keys in Key Protect: set %s and %s", config.EnvKPURL, config.EnvKPInstanceID)
		}
		r.Keys = keys
		return map[string]edge.Handler{config.PathEvents: r}, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "restore:", err)
		os.Exit(1)
	}
}
