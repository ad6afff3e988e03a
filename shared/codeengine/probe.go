package codeengine

import (
	"context"

	"github.com/keyguard-dev/keyguard/events"
)

// Probe tells the scheduler what became of a run's job: nil while it is pending or running, or
// when it finished (the runner publishes its own outcome); a transient backup.failed when the job
// run failed without one (the container crashed, ran out of time or memory), so the retry plan
// applies at once instead of after the lease. An unknown job run is also nil: Start may still be
// on its way, and the lease bounds the wait.
func (c *Client) Probe(ctx context.Context, run events.BackupStarted) (events.Payload, error) {
	s, err := c.Status(ctx, run.RunID)
	if err != nil || !s.Known || s.Phase != Failed {
		return nil, err
	}
	msg := "Code Engine job run " + s.Name + " failed"
	if s.Detail != "" {
		msg += ": " + s.Detail
	}
	end := c.clock.Now()
	if end.Before(run.StartedAt) {
		end = run.StartedAt
	}
	return events.BackupFailed{Database: run.Database, RunID: run.RunID, Type: run.Type, Mode: run.Mode, StartedAt: run.StartedAt,
		EndedAt: end, Class: events.Transient, Code: "job-run-failed", Message: msg}, nil
}
