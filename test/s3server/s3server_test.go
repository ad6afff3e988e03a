package s3server_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/test/s3server"
)

func TestStart(t *testing.T) {
	srv := s3server.Start(t)
	resp, err := http.Get(srv.Endpoint + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/health = %d", resp.StatusCode)
	}
	c := srv.Client(t)
	out, err := c.ListObjectsV2(&s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket)})
	if err != nil {
		t.Fatalf("bucket %s not usable: %v", srv.Bucket, err)
	}
	if len(out.Contents) != 0 {
		t.Fatalf("new bucket holds %d objects", len(out.Contents))
	}
	// Signatures are checked: a wrong secret is refused.
	bad := *srv
	bad.SecretKey = "wrong"
	bc := bad.Client(t)
	if _, err := bc.ListObjectsV2(&s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket)}); err == nil {
		t.Fatal("request signed with a wrong secret was accepted")
	}
}

func TestLaunchStopsOnStopAndContext(t *testing.T) {
	bin, err := s3server.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	srv, stop, err := s3server.Launch(context.Background(), bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	waitDown(t, srv.Endpoint)

	ctx, cancel := context.WithCancel(context.Background())
	srv2, stop2, err := s3server.Launch(ctx, bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	waitDown(t, srv2.Endpoint)
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
}

func waitDown(t *testing.T, endpoint string) {
	t.Helper()
	hc := &http.Client{Timeout: 200 * time.Millisecond}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		resp, err := hc.Get(endpoint + "/health")
		if err != nil {
			return
		}
		resp.Body.Close()
	}
	t.Fatalf("%s still answers after stop", endpoint)
}

func TestFindBinary(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "versitygw")
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(s3server.EnvBinary, notExec)
	if _, err := s3server.FindBinary(); err == nil || !strings.Contains(err.Error(), s3server.EnvBinary) {
		t.Fatalf("FindBinary with a non-executable = %v", err)
	}
	if _, _, err := s3server.Launch(context.Background(), notExec, t.TempDir()); err == nil {
		t.Fatal("Launch of a non-executable succeeded")
	}

	// Without the variable, the binary is looked for under the module root; from a directory
	// with no bin/versitygw the advice names make test.
	t.Setenv(s3server.EnvBinary, "")
	mod := t.TempDir()
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(mod, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	_, err := s3server.FindBinary()
	if err == nil || !strings.Contains(err.Error(), "make test") || !strings.Contains(err.Error(), filepath.Join(mod, "bin", "versitygw")) {
		t.Fatalf("FindBinary = %v, want advice to run make test naming %s", err, filepath.Join(mod, "bin", "versitygw"))
	}
	if err := os.MkdirAll(filepath.Join(mod, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "bin", "versitygw"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := s3server.FindBinary()
	if err != nil || got != filepath.Join(mod, "bin", "versitygw") {
		t.Fatalf("FindBinary = %q, %v", got, err)
	}
}
