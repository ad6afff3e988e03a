package s3server

import (
	"os/exec"
	"syscall"
)

// setParentDeath kills versitygw if the test process dies without stopping it (a test timeout
// panics and exits, skipping cleanups).
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
