package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
	"github.com/keyguard-dev/keyguard/test/s3server"
)

// syncBuffer is a bytes.Buffer safe for a child's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeSession is the session the README shows: `keyguard-local serve` starts the local
// stack and prints the environment; the keyguard binary, run with that environment as another
// terminal would, reads the fleet, lists, shows and fetches backups, requests one and waits for
// it, is refused while a run is in flight, and deletes a backup after a dry run.
func TestServeSession(t *testing.T) {
	vgw, err := s3server.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := fakedb2.GoBuild(bin, "github.com/keyguard-dev/keyguard/test/cmd/keyguard-local", "github.com/keyguard-dev/keyguard/cmd/keyguard"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	envFile := filepath.Join(t.TempDir(), "keyguard.env")
	serve := exec.CommandContext(ctx, filepath.Join(bin, "keyguard-local"), "serve", "-versitygw", vgw, "-env-file", envFile,
		"-tick", "2s", "-image-size", "8388608", "-log", "warn")
	var serveOut, serveErr syncBuffer
	serve.Stdout, serve.Stderr = &serveOut, &serveErr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = serve.Process.Signal(syscall.SIGINT)
		if err := serve.Wait(); err != nil {
			t.Errorf("keyguard-local serve: %v\n%s", err, serveErr.String())
		}
	}
	defer stop()

	var env []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		b, err := os.ReadFile(envFile)
		if err == nil {
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				kv := strings.TrimPrefix(line, "export ")
				k, v, _ := strings.Cut(kv, "=")
				env = append(env, k+"="+strings.Trim(v, "'"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve wrote no environment within a minute:\n%s\n%s", serveOut.String(), serveErr.String())
		}
	}
	if out := serveOut.String(); !strings.Contains(out, "export KEYGUARD_COS_ENDPOINT='http://127.0.0.1:") || !strings.Contains(out, "ready") {
		t.Fatalf("serve printed:\n%s", out)
	}
	keyguard := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "keyguard"), args...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "USER=tester"}, env...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			return string(out), ee.ExitCode()
		case err != nil:
			t.Fatalf("keyguard %v: %v", args, err)
		}
		return string(out), 0
	}
	expect := func(code int, wants []string, args ...string) string {
		t.Helper()
		out, got := keyguard(args...)
		if got != code {
			t.Fatalf("keyguard %s: exit %d, want %d:\n%s", strings.Join(args, " "), got, code, out)
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("keyguard %s: output lacks %q:\n%s", strings.Join(args, " "), w, out)
			}
		}
		t.Logf("$ keyguard %s\n%s", strings.Join(args, " "), out)
		return out
	}
	entries := func() []catalog.Entry {
		t.Helper()
		out, code := keyguard("backup", "list", "archive", "-json")
		var list []catalog.Entry
		if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil {
			t.Fatalf("backup list -json: exit %d, %v:\n%s", code, err, out)
		}
		return list
	}

	expect(0, []string{"DATABASE", "archive", "ledger", "full (", "start full: full slot"}, "status")
	expect(0, []string{"base", "offline", "images/archive/"}, "backup", "list", "archive")
	expect(0, []string{"restore chain (1 image, in restore order)", "verified      yes, by db2ckbkp"}, "backup", "show", "archive", "latest")
	expect(0, []string{"waiting for the scheduler", "started run archive-incremental-", "completed: offline incremental backup"},
		"backup", "create", "archive", "-type", "incremental", "-reason", "before the upgrade", "-wait")
	list := entries()
	if len(list) != 2 || list[1].ParentTimestamp != list[0].ImageTimestamp {
		t.Fatalf("after create -wait: %+v", list)
	}
	inc := list[1].ImageTimestamp
	expect(0, []string{"would delete " + inc + "-incremental of archive", "dry run: nothing deleted; add -confirm"}, "backup", "delete", "archive", inc)
	if n := len(entries()); n != 2 {
		t.Fatalf("the dry run deleted something: %d entries left", n)
	}
	expect(0, []string{"deleted " + inc + "-incremental of archive and its 1 stored file"}, "backup", "delete", "archive", inc, "-confirm")
	if n := len(entries()); n != 1 {
		t.Fatalf("after delete -confirm: %d entries, want 1", n)
	}
	expect(1, []string{"refused", "it is the last full backup"}, "backup", "delete", "archive", list[0].ImageTimestamp, "-confirm")
	expect(1, []string{"refused: the scheduler did not start the backup of ledger: run in flight (ledger-full-"}, "backup", "create", "ledger", "-wait", "-timeout", "30s")
	dir := filepath.Join(t.TempDir(), "restore")
	expect(0, []string{"fetched images/archive/" + list[0].ImageTimestamp, "sha256", "verified", "1 file, 8.0 MiB"}, "backup", "fetch", "archive", "latest", "-o", dir)
	img := list[0].Images[0]
	body, err := os.ReadFile(filepath.Join(dir, filepath.Base(img.Key)))
	if sum := sha256.Sum256(body); err != nil || hex.EncodeToString(sum[:]) != img.SHA256 {
		t.Errorf("the fetched file is not the cataloged image: %v", err)
	}
	expect(0, []string{"requested by keyguard-cli:tester (request ", "before the upgrade"}, "status", "archive")
	expect(0, []string{"name: archive", "name: ledger"}, "fleet", "show")
	expect(1, []string{"database nosuchdb: not in the fleet policy"}, "backup", "list", "nosuchdb")

	stop()
	if out := serveOut.String(); !strings.Contains(out, "stopping") {
		t.Errorf("serve did not stop cleanly:\n%s", out)
	}
	if _, err := os.Stat(envFile); !os.IsNotExist(err) {
		t.Errorf("serve left its environment file behind: %v", err)
	}
}
