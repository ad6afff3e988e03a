// Package procexec is the local stack's counterpart of the Code Engine executor: Process starts
// the runner as a child process per backup, with the same ibmendata and KEYGUARD_RUN_ID variables
// a Code Engine job run gets (shared/jobevent), so the local stack and tests run the real runner
// binary. It is test code: no deployed function links it.
package procexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/jobevent"
)

// Process starts the runner as a local child process, one per run. Set Command; the zero value
// of every other field is usable. A Process must not be copied after first use; it is safe for
// concurrent use.
type Process struct {
	// Command is the path of the runner binary.
	Command string
	// Args are the arguments after the command name.
	Args []string
	// Env is the child's environment besides ibmendata and KEYGUARD_RUN_ID (NAME=VALUE). The
	// child does not inherit this process's environment: pass os.Environ() here to inherit it.
	// Entries named ibmendata or KEYGUARD_RUN_ID are overridden by the run's own.
	Env []string
	// Dir is the child's working directory (this process's when empty).
	Dir string
	// Stdout and Stderr receive the child's output (discarded when nil).
	Stdout, Stderr io.Writer
	// Origin names the source of the event in ibmendata (jobevent defaults when zero).
	Origin jobevent.Origin
	// Log receives a line when a child starts and when it exits (slog.Default when nil). The
	// environment is never logged.
	Log *slog.Logger

	mu      sync.Mutex
	started map[string]int // run id -> pid
	running map[string]*os.Process
	reaped  []chan struct{} // one per child, closed once it is reaped
}

// Name is the executor name.
func (p *Process) Name() string { return "process" }

// Start starts the runner for run and returns without waiting for it; a goroutine reaps the
// child when it exits. Starting a run id that this Process already started is a no-op; a start
// that failed is not remembered, so it can be tried again. An invalid run or a missing Command is
// refused before anything is started.
func (p *Process) Start(ctx context.Context, run events.BackupStarted) error {
	if p.Command == "" {
		return errors.New("start runner process: no command")
	}
	vars, err := jobevent.Env(run, p.Origin)
	if err != nil {
		return fmt.Errorf("start runner process: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start runner process for run %s: %w", run.RunID, err)
	}
	env := slices.Clone(p.Env)
	for _, v := range vars {
		env = append(env, v.String()) // os/exec keeps the last value of a repeated name
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.started[run.RunID]; ok {
		return nil
	}
	// Not exec.CommandContext: the runner outlives the request that started it.
	cmd := exec.Command(p.Command, p.Args...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, p.Dir, p.Stdout, p.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start runner process for run %s: %w", run.RunID, err)
	}
	if p.started == nil {
		p.started = map[string]int{}
	}
	pid := cmd.Process.Pid
	p.started[run.RunID] = pid
	if p.running == nil {
		p.running = map[string]*os.Process{}
	}
	p.running[run.RunID] = cmd.Process
	log := p.log().With("run", run.RunID, "database", run.Database, "pid", pid)
	log.Info("runner process started", "command", p.Command)
	begin := time.Now()
	reaped := make(chan struct{})
	p.reaped = append(slices.DeleteFunc(p.reaped, closed), reaped)
	go func() {
		defer close(reaped)
		err := cmd.Wait()
		p.mu.Lock()
		delete(p.running, run.RunID)
		p.mu.Unlock()
		code := cmd.ProcessState.ExitCode()
		took := time.Since(begin).Round(time.Millisecond)
		if err != nil {
			log.Warn("runner process failed", "exit_code", code, "took", took, "err", err)
			return
		}
		log.Info("runner process exited", "exit_code", code, "took", took)
	}()
	return nil
}

// Cancel kills the run's child if it is still running. Safe to call twice.
func (p *Process) Cancel(_ context.Context, run events.BackupStarted) error {
	p.mu.Lock()
	proc := p.running[run.RunID]
	p.mu.Unlock()
	if proc == nil {
		return nil
	}
	if err := proc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("cancel run %s: %w", run.RunID, err)
	}
	return nil
}

// Started reports whether this Process started a child for runID.
func (p *Process) Started(runID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.started[runID]
	return ok
}

// Wait blocks until every child started before the call has exited and been reaped, or ctx
// ends.
func (p *Process) Wait(ctx context.Context) error {
	p.mu.Lock()
	pending := slices.Clone(p.reaped)
	p.mu.Unlock()
	for _, ch := range pending {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for runner processes: %w", ctx.Err())
		}
	}
	return nil
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (p *Process) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}
