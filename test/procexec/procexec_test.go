package procexec_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/jobevent"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
	"github.com/keyguard-dev/keyguard/test/procexec"
)

// The scheduler starts runs through a Process, and cancels them; likewise the simulated Db2.
var (
	_ scheduler.Executor = (*procexec.Process)(nil)
	_ scheduler.Canceler = (*procexec.Process)(nil)
)

// When the test binary runs with helperVar=1 it is the "runner": it records what it received
// and exits, before any test runs.
const (
	helperVar = "KEYGUARD_PROCESS_TEST_HELPER"
	outVar    = "KEYGUARD_PROCESS_TEST_OUT"
	exitVar   = "KEYGUARD_PROCESS_TEST_EXIT"
	sleepVar  = "KEYGUARD_PROCESS_TEST_SLEEP"
)

type record struct {
	Args     []string        `json:"args"`
	Dir      string          `json:"dir"`
	RunIDVar string          `json:"run_id_var"`
	Extra    string          `json:"extra"`
	Inherits bool            `json:"inherits"`
	Shape    events.Shape    `json:"shape"`
	Type     string          `json:"type"`
	ID       string          `json:"id"`
	Data     json.RawMessage `json:"data"`
	Err      string          `json:"err"`
}

func init() {
	if os.Getenv(helperVar) != "1" {
		return
	}
	if d, err := time.ParseDuration(os.Getenv(sleepVar)); err == nil {
		time.Sleep(d) // a long backup, for Cancel
	}
	r := record{Args: os.Args[1:], RunIDVar: os.Getenv(jobevent.VarRunID), Extra: os.Getenv("EXTRA"),
		Inherits: os.Getenv("KEYGUARD_PROCESS_TEST_PARENT_ONLY") != ""}
	r.Dir, _ = os.Getwd()
	if e, err := events.FromJobEnv(os.Getenv); err != nil {
		r.Err = err.Error()
	} else {
		r.Shape, r.Type, r.ID, r.Data = e.Shape, e.Type, e.ID, e.Data
	}
	line, _ := json.Marshal(r)
	f, err := os.OpenFile(os.Getenv(outVar), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		os.Exit(97)
	}
	_, _ = f.Write(append(line, '\n'))
	_ = f.Close()
	code, _ := strconv.Atoi(os.Getenv(exitVar))
	os.Exit(code)
}

func sampleStarted(id string) events.BackupStarted {
	start := time.Date(2026, 3, 2, 2, 0, 5, 0, time.UTC)
	return events.BackupStarted{
		Database: "sales-prod", RunID: id, Type: events.Incremental, Mode: events.Online,
		Slot: time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC), StartedAt: start, LeaseUntil: start.Add(time.Hour),
		KeyCRN: "crn:v1:bluemix:public:kms:us-south:a/0123:inst:key:aaaa", KeyVersion: "v3", Executor: "db2cli",
	}
}

// syncBuffer is a log destination the reaping goroutine and the test share.
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

func helper(t *testing.T, extraEnv ...string) (*procexec.Process, string, *syncBuffer) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "records.jsonl")
	logs := &syncBuffer{}
	p := &procexec.Process{
		Command: os.Args[0],
		Args:    []string{"backup", "--verbose"},
		Env:     append([]string{helperVar + "=1", outVar + "=" + out}, extraEnv...),
		Dir:     t.TempDir(),
		Log:     slog.New(slog.NewTextHandler(logs, nil)),
	}
	return p, out, logs
}

func wait(t *testing.T, p *procexec.Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func records(t *testing.T, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("record %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func TestProcessStartsRunnerWithTheEvent(t *testing.T) {
	t.Setenv("KEYGUARD_PROCESS_TEST_PARENT_ONLY", "1") // must not reach the child
	p, out, logs := helper(t, "EXTRA=yes", "ibmendata=bogus", jobevent.VarRunID+"=wrong")
	run := sampleStarted("sales-prod-incremental-20260302T020000Z-a0")
	if err := p.Start(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	if !p.Started(run.RunID) || p.Started("other") {
		t.Fatal("Started does not reflect the start")
	}
	wait(t, p)
	recs := records(t, out)
	if len(recs) != 1 {
		t.Fatalf("%d runner processes ran, want 1", len(recs))
	}
	r := recs[0]
	if r.Err != "" {
		t.Fatalf("runner could not read its event: %s", r.Err)
	}
	wantDir, _ := filepath.EvalSymlinks(p.Dir)
	gotDir, _ := filepath.EvalSymlinks(r.Dir)
	if !reflect.DeepEqual(r.Args, p.Args) || gotDir != wantDir || r.Extra != "yes" || r.Inherits {
		t.Fatalf("runner got args %v dir %q extra %q inherits %t", r.Args, r.Dir, r.Extra, r.Inherits)
	}
	if r.RunIDVar != run.RunID || r.Shape != events.ShapeJobEN || r.Type != events.TypeBackupStarted || r.ID != jobevent.EventID(run.RunID) {
		t.Fatalf("runner got %+v", r)
	}
	p2, err := events.DecodeData(r.Type, r.Data)
	if err != nil || !reflect.DeepEqual(p2, &run) {
		t.Fatalf("runner's payload %#v (%v), want %#v", p2, err, run)
	}
	if l := logs.String(); !strings.Contains(l, "runner process exited") || strings.Contains(l, "bogus") || strings.Contains(l, "ibmendata") {
		t.Fatalf("log: %s", l)
	}
}

func TestProcessIsIdempotentByRunID(t *testing.T) {
	p, out, _ := helper(t)
	run := sampleStarted("run-1")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- p.Start(context.Background(), run) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Start(context.Background(), sampleStarted("run-2")); err != nil {
		t.Fatal(err)
	}
	wait(t, p)
	recs := records(t, out)
	if len(recs) != 2 || recs[0].RunIDVar == recs[1].RunIDVar {
		t.Fatalf("%d runner processes (%v), want one per run id", len(recs), recs)
	}
}

func TestProcessFailedStartIsNotRemembered(t *testing.T) {
	p, out, _ := helper(t)
	good := p.Command
	p.Command = filepath.Join(t.TempDir(), "no-such-runner")
	run := sampleStarted("run-retry")
	if err := p.Start(context.Background(), run); err == nil || !strings.Contains(err.Error(), "run-retry") {
		t.Fatalf("err %v, want a start failure naming the run", err)
	}
	if p.Started(run.RunID) {
		t.Fatal("a failed start was remembered")
	}
	p.Command = good
	if err := p.Start(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	wait(t, p)
	if n := len(records(t, out)); n != 1 {
		t.Fatalf("%d runner processes, want 1", n)
	}
}

func TestProcessRefusals(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	bad := sampleStarted("run-bad")
	bad.Mode = "sideways"
	tests := []struct {
		name    string
		command string
		ctx     context.Context
		run     events.BackupStarted
		want    error
	}{
		{"no command", "", context.Background(), sampleStarted("run-a"), nil},
		{"invalid run", os.Args[0], context.Background(), bad, events.ErrInvalid},
		{"cancelled", os.Args[0], cancelled, sampleStarted("run-c"), context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, out, _ := helper(t)
			p.Command = tt.command
			err := p.Start(tt.ctx, tt.run)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			wait(t, p)
			if p.Started(tt.run.RunID) || len(records(t, out)) != 0 {
				t.Fatal("a refused start ran something")
			}
		})
	}
}

func TestProcessReapsAFailingRunner(t *testing.T) {
	p, out, logs := helper(t, exitVar+"=3")
	if err := p.Start(context.Background(), sampleStarted("run-fail")); err != nil {
		t.Fatal(err)
	}
	wait(t, p)
	if len(records(t, out)) != 1 {
		t.Fatal("runner did not run")
	}
	if l := logs.String(); !strings.Contains(l, "runner process failed") || !strings.Contains(l, "exit_code=3") {
		t.Fatalf("log: %s", l)
	}
}

func TestCancelKillsARunningChild(t *testing.T) {
	p, out, _ := helper(t, sleepVar+"=30s")
	run := sampleStarted("run-cancel")
	if err := p.Start(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := p.Cancel(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	wait(t, p)
	if d := time.Since(began); d > 10*time.Second {
		t.Fatalf("the child ran on for %s after Cancel", d)
	}
	if got := records(t, out); len(got) != 0 {
		t.Fatalf("a cancelled child finished its work: %+v", got)
	}
	if err := p.Cancel(context.Background(), run); err != nil {
		t.Fatalf("second Cancel: %v", err)
	}
}
