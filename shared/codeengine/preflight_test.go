package codeengine_test

import (
	"errors"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/preflight"
)

// The preflight looks the runner job up and starts a named job run carrying its probe, which
// the runner reads from ibmendata as it reads a backup.started event.
func TestJobAndRunEvent(t *testing.T) {
	s := start(t, nil)
	j, err := s.client.Job(ctx(t))
	if err != nil || j.Name != job || j.Project != project || j.Image == "" {
		t.Fatalf("job: %+v %v", j, err)
	}
	probe := events.Preflight{RunID: "pf-1", RequestedBy: "test"}
	for range 2 { // a second creation of the same name counts as created
		if err := s.client.RunEvent(ctx(t), "preflight-pf-1", probe); err != nil {
			t.Fatal(err)
		}
	}
	run, ok := s.emu.JobRun("preflight-pf-1")
	if !ok || run.JobName != job {
		t.Fatalf("job run: %+v %v", run, ok)
	}
	e, err := events.FromJobEnv(run.Getenv)
	if err != nil || e.Type != events.TypePreflight {
		t.Fatalf("the run's event: %+v %v", e, err)
	}
	p, err := events.DecodeData(e.Type, e.Data)
	if err != nil || p.(*events.Preflight).RunID != "pf-1" {
		t.Fatalf("probe: %+v %v", p, err)
	}
	s.emu.RemoveJob(job)
	if _, err := s.client.Job(ctx(t)); !errors.Is(err, preflight.ErrNotFound) {
		t.Fatalf("removed job: %v", err)
	}
	if err := s.client.RunEvent(ctx(t), "preflight-pf-2", probe); err == nil {
		t.Fatal("a run of a removed job was created")
	}
	if err := s.client.RunEvent(ctx(t), "Not_A_Name", probe); err == nil {
		t.Fatal("an invalid name was sent")
	}
}
