package codeengine

import (
	"context"
	"fmt"
	"net/http"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/jobevent"
	"github.com/keyguard-dev/keyguard/shared/preflight"
)

var _ preflight.Jobs = (*Client)(nil)

// Job looks up the runner job (GET /projects/{id}/jobs/{name}); an error wrapping
// preflight.ErrNotFound when the project has no such job.
func (c *Client) Job(ctx context.Context) (preflight.Job, error) {
	var job struct {
		Name           string `json:"name"`
		ProjectID      string `json:"project_id"`
		ImageReference string `json:"image_reference"`
	}
	code, err := c.call(ctx, "get job", c.jobName, core.GET, "/projects/{project_id}/jobs/{name}", map[string]string{"name": c.jobName}, nil, &job)
	if code == http.StatusNotFound {
		return preflight.Job{}, fmt.Errorf("job %s in project %s: %w: %w", c.jobName, c.projectID, preflight.ErrNotFound, err)
	}
	if err != nil {
		return preflight.Job{}, err
	}
	return preflight.Job{Name: job.Name, Project: job.ProjectID, Image: job.ImageReference}, nil
}

// RunEvent creates a job run of the runner job named name, carrying p in ibmendata as Event
// Notifications would (the notification id is name). A job run of that name that exists already
// counts as created.
func (c *Client) RunEvent(ctx context.Context, name string, p events.Payload) error {
	const op = "create job run"
	if !ValidName(name) {
		return &Error{Op: op, Name: name, Err: fmt.Errorf("%q is not a Code Engine name", name)}
	}
	body, err := jobevent.EventNotification(name, c.clock.Now(), p, c.origin)
	if err != nil {
		return &Error{Op: op, Name: name, Err: err}
	}
	req := map[string]any{"job_name": c.jobName, "name": name, "scale_array_spec": "0",
		"run_env_variables": []envVar{{Type: "literal", Name: jobevent.VarEvent, Value: string(body)}}}
	code, err := c.call(ctx, op, name, core.POST, "/projects/{project_id}/job_runs", nil, req, nil)
	if err == nil || code == http.StatusConflict {
		c.log.Info("job run created", "job", c.jobName, "name", name, "type", p.EventType())
		return nil
	}
	return err
}
