package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/keyguard-dev/keyguard/shared/preflight"
	"github.com/keyguard-dev/keyguard/test/stack"
)

// preflightTable runs the deployment preflight against the stack, as `keyguard preflight`
// runs it against a deployment, and prints its table; a failed check fails the run.
func preflightTable(ctx context.Context, out io.Writer, st *stack.Stack, tick time.Duration) error {
	pd, err := st.PreflightDeployment(tick)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\npreflight (keyguard preflight against the local stack):")
	r := preflight.Run(ctx, pd, preflight.Options{Budget: 30 * time.Second, AppWait: 5 * time.Second, JobWait: 5 * time.Second})
	if err := r.WriteTable(out); err != nil {
		return err
	}
	if !r.OK() {
		return fmt.Errorf("preflight failed: %d checks", len(r.Failed()))
	}
	return nil
}
