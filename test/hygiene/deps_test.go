package hygiene

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestProductionBinariesLinkNoTestCode: the functions and the operator command link no package
// under test/ (emulators, the simulated Db2, the local stack), nor testing or httptest.
func TestProductionBinariesLinkNoTestCode(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, pkg := range []string{"./functions/...", "./cmd/keyguard"} {
		cmd := exec.Command("go", "list", "-deps", pkg)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.Contains(dep, "/keyguard/test/") || dep == "testing" || strings.HasSuffix(dep, "/httptest") {
				t.Errorf("%s links %s", pkg, dep)
			}
		}
	}
}
