package clp

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The fake reads command lines and image files; neither may make it panic.

func FuzzParseBackup(f *testing.F) {
	f.Add("SALES tablespace (USERSPACE1,TS2) online incremental delta to /backup compress include logs without prompting")
	f.Add("SALES tablespace ( A , B ) to /b exclude logs")
	f.Add("SALES delta to")
	f.Fuzz(func(t *testing.T, line string) {
		tok := strings.Fields(line)
		b, bad, after := parseBackup(tok)
		if bad != "" || after != "" {
			return
		}
		if len(tok) > 0 && b.db != tok[0] {
			t.Fatalf("database %q from %q", b.db, line)
		}
		if b.dir != "" && !slices.Contains(tok, b.dir) {
			t.Fatalf("directory %q is not a token of %q", b.dir, line)
		}
		if b.delta && !b.incr || b.includeLogs && b.excludeLogs {
			t.Fatalf("inconsistent %+v", b)
		}
	})
}

func FuzzVerifyImage(f *testing.F) {
	dir := f.TempDir()
	p := filepath.Join(dir, "seed")
	if _, err := WriteImage(p, meta, MinImageBytes+100, false, 0); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("not an image"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "image")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		v, err := VerifyImage(p)
		if err == nil && (v.Size != int64(len(data)) || v.Size < MinImageBytes) {
			t.Fatalf("verified %+v for %d bytes", v, len(data))
		}
	})
}
