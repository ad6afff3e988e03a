package fakedb2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/test/fakedb2/clp"
)

// State is the fake database (see clp.State).
type State = clp.State

// Backup is one image the fake wrote (see clp.Backup).
type Backup = clp.Backup

// Fault is an injected failure (see clp.Fault).
type Fault = clp.Fault

// Faults.
const (
	FaultOnlineNotAllowed = clp.FaultOnlineNotAllowed
	FaultBackupPending    = clp.FaultBackupPending
	FaultTrackModOff      = clp.FaultTrackModOff
	FaultDiskFull         = clp.FaultDiskFull
	FaultKeyUnavailable   = clp.FaultKeyUnavailable
	FaultCorruptImage     = clp.FaultCorruptImage
	FaultRestoreMedia     = clp.FaultRestoreMedia
)

// StateEnv is the environment variable the fake binaries read the state file's path from.
const StateEnv = clp.StateEnv

const cmdPackage = "github.com/keyguard-dev/keyguard/test/fakedb2/cmd/"

var built struct {
	once sync.Once
	dir  string
	err  error
}

// Build compiles the fake db2 and db2ckbkp into a temporary directory and returns it, once per
// test process (later calls return the same directory). It needs the go command on PATH. The
// directory is left behind when the process ends (two small binaries in the OS temp directory).
func Build(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "keyguard-fakedb2-")
		if err != nil {
			built.err = err
			return
		}
		built.err = GoBuild(dir, cmdPackage+"db2", cmdPackage+"db2ckbkp")
		built.dir = dir
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

// GoBuild compiles packages (import paths of this module) into dir with the go command, static.
// The dev stack uses it for the fake db2 and the runner.
func GoBuild(dir string, pkgs ...string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("find the go command: %w", err)
	}
	cmd := exec.Command(goTool, append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %v\n%s", pkgs, err, out)
	}
	return nil
}

// BuildTo compiles the fake db2 and db2ckbkp into dir.
func BuildTo(dir string) error { return GoBuild(dir, cmdPackage+"db2", cmdPackage+"db2ckbkp") }

// SaveState writes the state file at path (outside tests).
func SaveState(path string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// WriteState writes the state file at path.
func WriteState(t testing.TB, path string, s State) {
	t.Helper()
	if err := clp.Save(path, &s); err != nil {
		t.Fatal(err)
	}
}

// Write commits a transaction of rows at time at to the fake database of the state file at
// path (outside tests too: the local stack writes between backups).
func Write(path string, at time.Time, rows int64) error {
	s, err := clp.Load(path)
	if err != nil {
		return err
	}
	s.AddWrite(at, rows)
	return clp.Save(path, s)
}

// ReadState reads the state file at path (with the fake's History and Calls).
func ReadState(t testing.TB, path string) State {
	t.Helper()
	s, err := clp.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return *s
}

// Env returns the environment a fake binary runs in: the current one with bin first on PATH and
// FAKEDB2_STATE set to state.
func Env(bin, state string) []string {
	env := []string{StateEnv + "=" + state, "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, StateEnv+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// Runner runs the fake binaries with os/exec. It has the method set of shared/db2.Runner.
type Runner struct {
	// Bin is the directory Build returned; State the state file's path.
	Bin, State string
}

// Run runs argv[0] (db2 or db2ckbkp) from Bin and returns its output and exit status; err only
// when it could not run or ctx ended.
func (r Runner) Run(ctx context.Context, argv []string) (string, int, error) {
	if len(argv) == 0 {
		return "", -1, errors.New("fakedb2: empty command")
	}
	if argv[0] != "db2" && argv[0] != "db2ckbkp" {
		return "", -1, fmt.Errorf("fakedb2: %q is not db2 or db2ckbkp", argv[0])
	}
	cmd := exec.CommandContext(ctx, filepath.Join(r.Bin, argv[0]), argv[1:]...)
	cmd.Env = Env(r.Bin, r.State)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0, nil
	case errors.As(err, &exit) && ctx.Err() == nil:
		return out.String(), exit.ExitCode(), nil
	case ctx.Err() != nil:
		return out.String(), -1, fmt.Errorf("fakedb2: %s: %w", argv[0], ctx.Err())
	}
	return out.String(), -1, fmt.Errorf("fakedb2: %s: %w", argv[0], err)
}

// LogName is the file name of log number n (S0000001.LOG).
func LogName(n int) string { return clp.LogName(n) }
