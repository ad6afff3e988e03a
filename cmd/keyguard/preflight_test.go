package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/preflight"
	"github.com/keyguard-dev/keyguard/test/s3server"
	"github.com/keyguard-dev/keyguard/test/stack"
)

// keyguard preflight prints the table (or JSON) and exits 0 on the local stack, 1 once a
// check fails.
func TestPreflightCommandOnTheLocalStack(t *testing.T) {
	bin, err := s3server.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := stack.Start(ctx, stack.Options{Versitygw: bin, Start: time.Date(2026, 11, 24, 1, 55, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.EnablePreflight(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	a := &app{getenv: func(string) string { return "" }, out: &out, errOut: &errOut,
		preflight: func() (preflight.Deployment, error) { return st.PreflightDeployment(15 * time.Minute) }}
	if code := execute(ctx, []string{"preflight", "--app-wait", "3s", "-job-wait", "3s"}, a); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"AREA", "object round trip", "route rotation /events", "runner job", "all checks passed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
	st.CE.RemoveJob(stack.RunnerJob)
	out.Reset()
	errOut.Reset()
	if code := execute(ctx, []string{"preflight", "-json", "-app-wait", "3s", "-job-wait", "3s"}, a); code != exitFailure {
		t.Fatalf("exit %d with the runner job gone\n%s", code, errOut.String())
	}
	var r preflight.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.OK() {
		t.Fatalf("JSON report: %v\n%s", err, out.String())
	}
	if !strings.Contains(errOut.String(), "1 of") || !strings.Contains(errOut.String(), "checks failed") {
		t.Fatalf("stderr: %s", errOut.String())
	}
	if code := execute(ctx, []string{"preflight", "extra"}, a); code != exitUsage {
		t.Fatalf("an argument: exit %d", code)
	}
	b := &app{getenv: func(string) string { return "" }, out: &out, errOut: &errOut}
	errOut.Reset()
	if code := execute(ctx, []string{"preflight"}, b); code != exitFailure || !strings.Contains(errOut.String(), "KEYGUARD_COS_ENDPOINT") {
		t.Fatalf("no environment: exit %d: %s", code, errOut.String())
	}
}
