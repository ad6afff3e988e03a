package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/runtime"
)

// TestFleetPush: push validates, creates the policy object when there is none, replaces exactly
// the version it read, says what it added and removed, and refuses an invalid file.
func TestFleetPush(t *testing.T) {
	f := seed(t)
	ctx := context.Background()
	f.o.fleet = policySource{src: &runtime.COSFleet{Objects: f.objs, Key: defaultFleetKey}, o: f.o}
	v1, err := os.ReadFile("testdata/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.run(t, "fleet", "push", "testdata/fleet.yaml"); err != nil {
		t.Fatal(err)
	}
	if got, _, err := f.objs.Get(ctx, defaultFleetKey); err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("stored policy: %v", err)
	}
	if !strings.Contains(f.out.String(), "created config/fleet.yaml in bucket b from testdata/fleet.yaml: 3 databases") {
		t.Errorf("output:\n%s", f.out)
	}

	f.out.Reset()
	if err := f.run(t, "fleet", "push", "testdata/fleet.yaml"); err != nil || !strings.Contains(f.out.String(), "nothing to push") {
		t.Errorf("pushing the same policy again = %v:\n%s", err, f.out)
	}

	// Drop db3, add db4.
	v2 := strings.Replace(string(v1), "name: db3", "name: db4", 1)
	file := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(file, []byte(v2), 0o600); err != nil {
		t.Fatal(err)
	}
	f.out.Reset()
	if err := f.run(t, "fleet", "push", file); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"replaced config/fleet.yaml", "added: db4", "removed: db3"} {
		if !strings.Contains(f.out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, f.out)
		}
	}
	f.out.Reset()
	if err := f.run(t, "fleet", "show"); err != nil || f.out.String() != v2 {
		t.Errorf("fleet show = %v:\n%s", err, f.out)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\ndatabases:\n  - name: x\n    executor: simulated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.run(t, "fleet", "push", bad); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Errorf("pushing an invalid policy = %v", err)
	}
	if got, _, _ := f.objs.Get(ctx, defaultFleetKey); string(got) != v2 {
		t.Error("an invalid policy was stored")
	}
}

// racingStore changes the policy object between the push's read and its write.
type racingStore struct{ objstore.Store }

func (r racingStore) Put(ctx context.Context, key string, body []byte, c objstore.Cond) (string, error) {
	if c.IfMatch != "" {
		if _, err := r.Store.Put(ctx, key, []byte("version: 1\n# someone else\n"), objstore.Cond{}); err != nil {
			return "", err
		}
	}
	return r.Store.Put(ctx, key, body, c)
}

func TestFleetPushLosesARaceSafely(t *testing.T) {
	f := seed(t)
	ctx := context.Background()
	if _, err := f.objs.Put(ctx, defaultFleetKey, []byte("version: 1\n"), objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	f.o.objs = racingStore{f.objs}
	err := f.run(t, "fleet", "push", "testdata/fleet.yaml")
	if err == nil || !strings.Contains(err.Error(), "changed while pushing") {
		t.Errorf("push that lost a race = %v", err)
	}
	if got, _, _ := f.objs.Get(ctx, defaultFleetKey); string(got) != "version: 1\n# someone else\n" {
		t.Errorf("the other push was overwritten: %q", got)
	}
}

// TestProgressBar: on a terminal the bar redraws one line and ends it; elsewhere plain lines.
func TestProgressBar(t *testing.T) {
	now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	clk := func() time.Time { return now }
	var tty bytes.Buffer
	b := startBar(&tty, true, "img.001", 4<<20, clk)
	_, _ = b.Write(make([]byte, 1<<20))
	now = now.Add(time.Second)
	b.draw(false)
	_, _ = b.Write(make([]byte, 3<<20))
	now = now.Add(3 * time.Second)
	b.finish()
	lines := strings.Split(tty.String(), "\r")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "img.001 [======                  ] 1.0 MiB of 4.0 MiB (25%), 1.0 MiB/s, 3s left") ||
		!strings.HasPrefix(lines[2], "img.001 [========================] 4.0 MiB of 4.0 MiB (100%)") || !strings.HasSuffix(lines[2], "\n") {
		t.Errorf("terminal output: %q", tty.String())
	}
	var plain bytes.Buffer
	b = startBar(&plain, false, "img.001", -1, clk)
	_, _ = b.Write(make([]byte, 1<<20))
	b.finish()
	if plain.String() != "img.001: 1.0 MiB, 0 B/s\n" {
		t.Errorf("plain output: %q", plain.String())
	}
}
