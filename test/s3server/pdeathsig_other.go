//go:build !linux

package s3server

import "os/exec"

// setParentDeath has no portable equivalent outside Linux: the server is stopped by stop only.
func setParentDeath(*exec.Cmd) {}
