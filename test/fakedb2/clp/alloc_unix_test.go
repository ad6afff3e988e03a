//go:build unix

package clp

import (
	"os"
	"syscall"
	"testing"
)

// allocatedBytes is the space the file occupies on disk.
func allocatedBytes(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatalf("no Stat_t for %s", path)
	}
	return sys.Blocks * 512
}
