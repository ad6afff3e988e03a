// Command keyguard-local runs keyguard on loopback, with no cloud account: a real S3 server
// (versitygw), the Key Protect, Event Notifications and Db2 on Cloud emulators, the three
// functions composed as the deployed mains compose them, the runner against a fake Db2 command
// line and a simulated Db2.
//
//	keyguard-local run [flags]   a scripted week in accelerated time, printing a timeline (make run)
//	keyguard-local serve [flags]      the stack kept up on wall time, for the operator command (make serve)
//	keyguard-local simulate [flags]   a deterministic year of faults, beside the cron script (make simulate)
//
// It is test code: the deployed functions and the operator command do not link it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: keyguard-local <command> [flags]

commands:
  run [flags]   run the whole system on loopback through a simulated week and print a timeline
  serve [flags]      start the stack and keep it up, printing the environment for the keyguard command
  simulate [flags]   play a seeded year of faults in virtual time, check the invariants, and compare
                     with the cron script (simulate -h for its flags)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runDev(ctx, os.Args[2:], os.Stdout)
	case "serve":
		err = serve(ctx, os.Args[2:], os.Stdout)
	case "simulate":
		err = simulate(ctx, os.Args[2:], os.Stdout)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "keyguard-local: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "keyguard-local:", err)
		os.Exit(1)
	}
}
