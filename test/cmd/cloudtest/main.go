// Command cloudtest is keyguard's acceptance run on IBM Cloud (make cloud-test; never part of
// make test). Given a tfvars file for infra/examples/basic and an IBM Cloud API key, it applies
// the example, runs keyguard preflight until it passes (the first tick comes within the tick
// interval), asks for a full backup of one Db2 on Cloud database and waits until it is in the
// catalog, prints the restore plan, then empties the buckets it created and destroys
// everything, whether the steps before passed or not (unless -keep).
//
//	IBMCLOUD_API_KEY=... go run ./test/cmd/cloudtest -tfvars my.tfvars -db ledger
//	go run ./test/cmd/cloudtest -tfvars my.tfvars -db ledger -dry-run   # the steps, nothing run
//
// It needs terraform (bin/terraform: make tf-fmt builds it) and the function images already in a
// registry the tfvars name (make images, then push them). docs/deploy.md ("Acceptance run on
// IBM Cloud") says what the tfvars must hold, what the run costs and how long it takes.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := parse(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cloudtest:", err)
		os.Exit(2)
	}
	if err := run(ctx, c, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cloudtest:", err)
		os.Exit(1)
	}
}
