package e2e

import (
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
)

// TestOperatorRestoreCheckAndMetrics runs the operator command against the local stack: two
// days of backups of a self-managed database, then `keyguard restore -into -at -probe -wait`
// (exit 0, the probe's rows as of that time), a refused in-place restore (exit 1), the restore
// history in status and backup list; `keyguard check` OK (exit 0), CRITICAL once an image of the
// newest chain is removed from the bucket (exit 2) and when ticks stop (exit 2); and the
// scheduler's /metrics, refused without the bearer token.
func TestOperatorRestoreCheckAndMetrics(t *testing.T) {
	st, ctx, db2, fleetFile := db2cliStackFleet(t, "")
	cli := t.TempDir()
	if err := fakedb2.GoBuild(cli, "github.com/keyguard-dev/keyguard/cmd/keyguard"); err != nil {
		t.Fatal(err)
	}
	write(t, db2, at(1, 58), 5)
	step(t, ctx, st, 5*time.Minute) // Tue 02:00 full
	write(t, db2, at(2, 30), 3)
	step(t, ctx, st, time.Hour) // 03:00 incremental
	write(t, db2, at(3, 30), 4)
	step(t, ctx, st, 23*time.Hour) // Wed 02:00 full
	step(t, ctx, st, time.Hour)    // Wed 03:00 incremental

	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(cli, "keyguard"), args...)
		cmd.Env = append(os.Environ(), st.OperatorEnv(fleetFile)...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &exit):
			return string(out), exit.ExitCode()
		}
		t.Fatalf("keyguard %v: %v\n%s", args, err, out)
		return "", -1
	}

	out, code := run("restore", "payroll", "-into", "PAYCHK", "-at", "2026-11-24T02:45:00Z", "-probe", "SELECT COUNT(*) FROM APP.ORDERS", "-wait")
	if code != 0 || !strings.Contains(out, "restored") || !strings.Contains(out, "probe     8") || !strings.Contains(out, "the restore job took the request") {
		t.Fatalf("keyguard restore -into -at: exit %d\n%s", code, out)
	}
	t.Logf("keyguard restore -into PAYCHK -at 02:45 -wait:\n%s", out)
	changeDb2(t, db2, func(s *fakedb2.State) { s.Applications = 1 })
	out, code = run("restore", "payroll", "-wait")
	if code != 1 || !strings.Contains(out, "1 application(s) are connected to PAYROLL") {
		t.Fatalf("keyguard restore in place with an application: exit %d\n%s", code, out)
	}
	out, _ = run("status", "payroll")
	if !strings.Contains(out, "restores") || !strings.Contains(out, "into PAYCHK at 2026-11-24 02:45") || !strings.Contains(out, "FAILED") {
		t.Fatalf("status shows no restore history:\n%s", out)
	}
	out, _ = run("backup", "list", "payroll")
	if !strings.Contains(out, "restores of payroll") || !strings.Contains(out, "by keyguard-cli:") {
		t.Fatalf("backup list shows no restore history:\n%s", out)
	}

	now := st.Clock.Now().Format(time.RFC3339)
	out, code = run("check", "-now", now)
	if code != 0 || !strings.Contains(out, "OK  newest restorable point") {
		t.Fatalf("keyguard check on a healthy fleet: exit %d\n%s", code, out)
	}
	t.Logf("keyguard check (healthy): exit %d\n%s", code, out)

	entries, err := catalog.New(st.Objects).List(ctx, "payroll")
	if err != nil {
		t.Fatal(err)
	}
	newest := entries[len(entries)-1]
	if err := st.Objects.Delete(ctx, newest.Images[0].Key); err != nil {
		t.Fatal(err)
	}
	out, code = run("check", "-nagios", "-now", now)
	if code != 2 || !strings.HasPrefix(out, "KEYGUARD CRITICAL") || !strings.Contains(out, "missing from COS") {
		t.Fatalf("keyguard check with an image removed: exit %d\n%s", code, out)
	}
	t.Logf("keyguard check -nagios (image removed): exit %d\n%s", code, out)

	// Ticks stop: 40 minutes without one is more than two intervals.
	out, code = run("check", "-json", "-now", st.Clock.Now().Add(40*time.Minute).Format(time.RFC3339))
	if code != 2 || !strings.Contains(out, "the scheduler has stopped") {
		t.Fatalf("keyguard check after ticks stopped: exit %d\n%s", code, out)
	}

	// The scheduler's figures, behind the bearer token.
	get := func(token string) (*http.Response, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, st.URLs[config.FnScheduler]+config.PathMetrics, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp, b.String()
	}
	if resp, _ := get(""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %d", resp.StatusCode)
	}
	resp, body := get(st.Token.Reveal())
	for _, want := range []string{`keyguard_last_success_timestamp_seconds{database="payroll"}`, `keyguard_consecutive_failures{database="payroll"} 0`,
		`keyguard_rotation_window_open{database="payroll"} 0`, `keyguard_backups_started_total{database="payroll",type="full"} 2`,
		`keyguard_restorable_point_age_seconds{database="payroll"}`} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("/metrics: %d, no %s in\n%s", resp.StatusCode, want, body)
		}
	}
}
