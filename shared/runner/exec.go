package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
)

// maxOutput bounds what one Db2 command may print before it is cut (parsers need far less).
const maxOutput = 4 << 20

// Commands runs Db2 command line programs (db2, db2ckbkp) as child processes. Successive db2
// calls from one process share the command line processor's back-end session, as in a shell.
type Commands struct {
	// Env is the environment of the commands (DB2INSTANCE, PATH with sqllib/bin ...); the
	// process's own when nil.
	Env []string
}

// Run runs argv and returns its combined output and exit code. err is non-nil only when the
// program could not be run at all (not found, context ended); a non-zero exit is not an error:
// Db2 reports failures in its output, which the parsers classify.
func (c Commands) Run(ctx context.Context, argv []string) (string, int, error) {
	if len(argv) == 0 {
		return "", -1, errors.New("empty command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = c.Env
	var out limited
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0, nil
	case errors.As(err, &exit) && ctx.Err() == nil:
		return out.String(), exit.ExitCode(), nil
	default:
		return out.String(), -1, fmt.Errorf("run %s: %w", argv[0], err)
	}
}

// limited keeps the first maxOutput bytes written to it.
type limited struct{ bytes.Buffer }

func (l *limited) Write(p []byte) (int, error) {
	if room := maxOutput - l.Len(); room > 0 {
		l.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
