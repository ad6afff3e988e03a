package executor

import (
	"context"

	"github.com/keyguard-dev/keyguard/events"
)

// Pull is the executor of databases whose runner cannot be started from the cloud: a
// self-managed Db2 writes its images on its own host, so the runner there (runner -poll) pulls
// runs in flight from the state objects. Start records nothing more than the scheduler already
// wrote (the run in the state is the instruction); an agent that never picks it up leaves the run
// to expire at its lease, which counts as a failure and alerts like any other.
type Pull struct{}

// Name is the executor name recorded in backup.started.
func (Pull) Name() string { return "pull" }

// Start accepts the run.
func (Pull) Start(context.Context, events.BackupStarted) error { return nil }
