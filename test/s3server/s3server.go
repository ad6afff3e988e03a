package s3server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// EnvBinary names the versitygw binary to use instead of <module root>/bin/versitygw.
const EnvBinary = "KEYGUARD_VERSITYGW"

// InstallCommand installs the pinned versitygw where FindBinary looks (run at the module root).
const InstallCommand = "GOBIN=$(pwd)/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// DefaultBucket is the bucket Launch creates.
const DefaultBucket = "keyguard"

// Server is a running versitygw.
type Server struct {
	// Endpoint is the S3 endpoint, http://127.0.0.1:<port>.
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per server.
	AccessKey string
	SecretKey string
	// Bucket exists and is empty at start.
	Bucket string
	Region string
	// RootDir holds the objects (RootDir/data) and versions (RootDir/versions).
	RootDir string
}

// Start runs versitygw for t on a free loopback port with a temporary root, creates a bucket,
// and stops the server when t ends. A missing binary fails t (run `make test`, or set
// KEYGUARD_VERSITYGW).
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := FindBinary()
	if err != nil {
		t.Fatalf("s3server: %v", err)
	}
	srv, stop, err := Launch(context.Background(), bin, t.TempDir())
	if err != nil {
		t.Fatalf("s3server: %v", err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("s3server: stop: %v", err)
		}
	})
	return srv
}

// Client returns an ibm-cos-sdk-go client for s (HMAC credentials, path style), failing t on
// error. Its idle connections are closed when t ends, before the server stops, so that the
// server can exit at once.
func (s *Server) Client(t testing.TB) *s3.S3 {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	o := s.Options()
	o.HTTPClient = &http.Client{Transport: tr}
	c, err := objstore.NewCOSClient(o)
	if err != nil {
		t.Fatalf("s3server: client: %v", err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// Options returns the objstore options that reach s.
func (s *Server) Options() objstore.Options {
	return objstore.Options{Endpoint: s.Endpoint, Region: s.Region, HMACKeyID: s.AccessKey, HMACSecret: s.SecretKey}
}

// NewClient returns an ibm-cos-sdk-go client for s, built by objstore.NewCOSClient.
func (s *Server) NewClient() (*s3.S3, error) { return objstore.NewCOSClient(s.Options()) }

// FindBinary returns the versitygw to run: $KEYGUARD_VERSITYGW, else <module root>/bin/versitygw
// (the module root is the nearest directory above the working directory holding go.mod).
func FindBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBinary, p, err)
		}
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find versitygw: %w", err)
	}
	root := ""
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			root = dir
			break
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("find versitygw: no go.mod above %s; set %s to the versitygw binary", wd, EnvBinary)
		}
	}
	p := filepath.Join(root, "bin", "versitygw")
	if err := executable(p); err != nil {
		return "", fmt.Errorf("versitygw not found at %s (%v): run `make test`, which installs it there (%s), or set %s to the binary",
			p, err, InstallCommand, EnvBinary)
	}
	return p, nil
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// Launch starts versitygw from binPath on a free loopback port, storing under rootDir (which it
// creates; the caller removes it), waits until it answers /health, and creates DefaultBucket. The
// server runs until stop is called or ctx is done. stop is idempotent and safe for concurrent
// use; it asks the server to exit (SIGTERM) and kills it after 2 s (versitygw waits up to 10 s
// for clients' open keep-alive connections; its posix store needs no shutdown). stop reports an
// exit that came before it (a crash) with the server's last output.
func Launch(ctx context.Context, binPath, rootDir string) (srv *Server, stop func() error, err error) {
	if err := executable(binPath); err != nil {
		return nil, nil, fmt.Errorf("versitygw %s: %w", binPath, err)
	}
	data, versions := filepath.Join(rootDir, "data"), filepath.Join(rootDir, "versions")
	for _, d := range []string{data, versions} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, nil, fmt.Errorf("versitygw root: %w", err)
		}
	}
	var lastErr error
	for range 5 { // another process may take the port between our probe and versitygw's bind
		srv, stop, err := launchOnce(ctx, binPath, rootDir, data, versions)
		if err == nil {
			return srv, stop, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, lastErr
}

func launchOnce(ctx context.Context, binPath, rootDir, data, versions string) (*Server, func() error, error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	srv := &Server{
		Endpoint:  fmt.Sprintf("http://127.0.0.1:%d", port),
		AccessKey: "kg" + randomHex(8),
		SecretKey: randomHex(20),
		Bucket:    DefaultBucket,
		Region:    objstore.DefaultRegion,
		RootDir:   rootDir,
	}
	// Global flags go before the backend subcommand; the root folder is the last argument.
	args := []string{
		"--port", fmt.Sprintf("127.0.0.1:%d", port),
		"--access", srv.AccessKey, "--secret", srv.SecretKey,
		"--region", srv.Region,
		"--health", "/health", "--keep-alive", "--quiet",
		"posix", "--versioning-dir", versions, data,
	}
	cmd := exec.Command(binPath, args...)
	cmd.Env = cleanEnv()
	out := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	setParentDeath(cmd)
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start versitygw: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			select {
			case <-exited:
				stopErr = fmt.Errorf("versitygw exited early: %v: %s", waitErr, out.String())
				return
			default:
			}
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(2 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		return stopErr
	}
	go func() {
		select {
		case <-ctx.Done():
			_ = stop()
		case <-exited:
		}
	}()

	if err := waitHealthy(ctx, srv.Endpoint+"/health", exited); err != nil {
		_ = stop()
		return nil, nil, fmt.Errorf("versitygw on port %d: %w; output: %s", port, err, strings.TrimSpace(out.String()))
	}
	if err := createBucket(ctx, srv); err != nil {
		_ = stop()
		return nil, nil, err
	}
	return srv, stop, nil
}

func waitHealthy(ctx context.Context, url string, exited <-chan struct{}) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("exited before it was healthy")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("not healthy after 15s")
		}
	}
}

func createBucket(ctx context.Context, srv *Server) error {
	c, err := srv.NewClient()
	if err != nil {
		return fmt.Errorf("versitygw client: %w", err)
	}
	if _, err := c.CreateBucketWithContext(ctx, &s3.CreateBucketInput{Bucket: aws.String(srv.Bucket)}); err != nil {
		return fmt.Errorf("versitygw create bucket %s: %w", srv.Bucket, err)
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// cleanEnv is the environment without versitygw's own variables, so that a developer's settings
// cannot change the server under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_ACCESS_KEY") || strings.HasPrefix(kv, "ROOT_SECRET") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if extra := b.buf.Len() - b.max; extra > 0 {
		b.buf.Next(extra)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
