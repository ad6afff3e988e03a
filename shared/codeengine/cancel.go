package codeengine

import (
	"context"
	"net/http"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/keyguard-dev/keyguard/events"
)

// Cancel deletes the run's job run, which stops its instance. A job run that is already gone
// (404) counts as cancelled; it is safe to call twice.
func (c *Client) Cancel(ctx context.Context, run events.BackupStarted) error {
	name := JobRunName(run.RunID)
	code, err := c.call(ctx, "delete job run", name, core.DELETE, "/projects/{project_id}/job_runs/{name}", map[string]string{"name": name}, nil, nil)
	if code == http.StatusNotFound {
		return nil
	}
	return err
}
