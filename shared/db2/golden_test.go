package db2

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with the file at path, or rewrites the file under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// outcome is the golden form of a parser or planner result.
type outcome struct {
	Result any      `json:"result,omitempty"`
	Error  *errJSON `json:"error,omitempty"`
	// Wrapped is set when the error is not an *Error (it should always be one).
	Wrapped string `json:"wrapped,omitempty"`
}

type errJSON struct {
	Class  string `json:"class"`
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	Msg    string `json:"msg"`
}

func render(t *testing.T, result any, err error) []byte {
	t.Helper()
	o := outcome{}
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			o.Error = &errJSON{string(e.Class), e.Code, e.Reason, e.Msg}
		} else {
			o.Wrapped = err.Error()
		}
	} else {
		o.Result = result
	}
	b, merr := json.MarshalIndent(o, "", "  ")
	if merr != nil {
		t.Fatal(merr)
	}
	return append(b, '\n')
}

// samples returns the sample files of a testdata directory, by name without extension.
func samples(t testing.TB, dir string) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.txt"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no samples in testdata/%s: %v", dir, err)
	}
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".txt")] = string(b)
	}
	return out
}

func goldenPath(dir, name string) string {
	return filepath.Join("testdata", dir, name+".golden.json")
}
