package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/notify"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/runner"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
	"github.com/keyguard-dev/keyguard/shared/upload"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
	"github.com/keyguard-dev/keyguard/test/procexec"
)

// db2cli builds the executor of db2cli databases.
func (s *Stack) db2cli(o Options, apiKey, enURL string, log *slog.Logger) (scheduler.Executor, error) {
	d := o.Db2CLI
	if d.RunnerBin == "" {
		cos, err := objstore.NewCOSClient(objstore.Options{Endpoint: s.S3.Endpoint, Region: s.S3.Region, HMACKeyID: s.S3.AccessKey, HMACSecret: s.S3.SecretKey})
		if err != nil {
			return nil, err
		}
		rlog := log.With("fn", config.FnRunner)
		up, err := upload.New(cos, s.S3.Bucket, "keyguard/", upload.Options{Logger: rlog})
		if err != nil {
			return nil, err
		}
		auth, err := notify.NewIAMAuthenticator(apiKey, enURL)
		if err != nil {
			return nil, err
		}
		send, err := notify.New(notify.Options{URL: enURL, InstanceID: enInstance, SourceID: enSourceID, Source: "keyguard/" + config.FnRunner, Authenticator: auth, Clock: s.Clock, Logger: log})
		if err != nil {
			return nil, err
		}
		r := &runner.Runner{Fleet: s.fleet, DB2: fakedb2.Runner{Bin: d.FakeBin, State: d.StateFile}, Upload: up,
			Catalog: catalog.New(s.Objects), Send: send, Clock: s.Clock, Log: rlog, Objects: s.Objects}
		in := &inProcess{h: r, log: log}
		s.waiters = append(s.waiters, in)
		return simTime{in, d.StateFile}, nil
	}
	yaml := o.FleetYAML
	if len(yaml) == 0 {
		yaml = DevYAML
	}
	dir, err := os.MkdirTemp("", "keyguard-runner-")
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() error { return os.RemoveAll(dir) })
	fleetFile := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(fleetFile, yaml, 0o600); err != nil {
		return nil, err
	}
	env := fakedb2.Env(d.FakeBin, d.StateFile)
	env = append(env,
		config.EnvIAMURL+"="+enURL, config.EnvAPIKey+"="+apiKey,
		config.EnvCOSEndpoint+"="+s.S3.Endpoint, config.EnvCOSRegion+"="+s.S3.Region, config.EnvCOSBucket+"="+s.S3.Bucket,
		config.EnvCOSPrefix+"=keyguard/", config.EnvCOSHMACKey+"="+s.S3.AccessKey, config.EnvCOSHMACSecret+"="+s.S3.SecretKey,
		config.EnvENURL+"="+enURL, config.EnvENInstanceID+"="+enInstance, config.EnvENSourceID+"="+enSourceID,
		config.EnvFleetFile+"="+fleetFile, config.EnvLogLevel+"=warn")
	p := &procexec.Process{Command: d.RunnerBin, Env: env, Stderr: os.Stderr, Log: log}
	s.waiters = append(s.waiters, p)
	return simTime{p, d.StateFile}, nil
}

// simTime makes the fake Db2 stamp each image with the run's simulated start time, as a real
// Db2 stamps it with its clock.
type simTime struct {
	next  scheduler.Executor
	state string
}

func (t simTime) Start(ctx context.Context, run events.BackupStarted) error {
	b, err := os.ReadFile(t.state)
	if err != nil {
		return err
	}
	var st fakedb2.State
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	if ts := run.StartedAt.UTC().Format("20060102150405"); ts > st.NextTimestamp {
		st.NextTimestamp = ts
		if err := fakedb2.SaveState(t.state, st); err != nil {
			return err
		}
	}
	return t.next.Start(ctx, run)
}

// inProcess runs the runner's handler in a goroutine, as a job run would run it in a container.
type inProcess struct {
	h   *runner.Runner
	log *slog.Logger

	mu    sync.Mutex
	known map[string]bool
	wg    sync.WaitGroup
}

func (p *inProcess) Start(_ context.Context, run events.BackupStarted) error {
	e, err := events.Encode(run.RunID+"/started", "keyguard/scheduler", run.StartedAt, run)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.known == nil {
		p.known = map[string]bool{}
	}
	if p.known[run.RunID] {
		return nil
	}
	p.known[run.RunID] = true
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if _, err := p.h.Handle(context.Background(), e); err != nil {
			p.log.Error("runner", "run", run.RunID, "err", err)
		}
	}()
	return nil
}

// Wait waits for every started run to finish.
func (p *inProcess) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("runner still running: %w", ctx.Err())
	}
}
