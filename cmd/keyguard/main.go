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

const usage = `usage: keyguard <command> [flags] [arguments]

commands:
` + opsUsage

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "status", "backup", "plan-restore", "prune":
		err = runOps(ctx, os.Args[1:], os.Getenv, os.Stdout)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "keyguard: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	var ue *usageError
	switch {
	case errors.As(err, &ue) && ue.err == nil: // -h
		fmt.Print(ue.usage)
	case errors.Is(err, flag.ErrHelp): // the flag package printed the usage
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "keyguard: %v\n\n%s", err, ue.usage)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "keyguard:", err)
		os.Exit(1)
	}
}
