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

func FuzzParseRestore(f *testing.F) {
	f.Add("SALES incremental automatic from /backup taken at 20261124013000 into SALES replace existing without rolling forward without prompting")
	f.Add("SALES from taken at")
	f.Add("SALES without rolling")
	f.Fuzz(func(t *testing.T, line string) {
		tok := strings.Fields(line)
		r, bad, after := parseRestore(tok)
		if bad != "" || after != "" {
			return
		}
		if len(tok) > 0 && r.db != tok[0] {
			t.Fatalf("database %q from %q", r.db, line)
		}
		for _, v := range []string{r.dir, r.ts, r.into} {
			if v != "" && !slices.Contains(tok, v) {
				t.Fatalf("%q is not a token of %q", v, line)
			}
		}
		if r.auto && !r.incr {
			t.Fatalf("automatic without incremental: %+v", r)
		}
	})
}

func FuzzParseRollforward(f *testing.F) {
	f.Add("SALES to end of logs and stop")
	f.Add("SALES to 2026-11-24-02.00.00.000000 using utc time and complete")
	f.Add("SALES query status")
	f.Add("SALES using utc time")
	f.Fuzz(func(t *testing.T, line string) {
		tok := strings.Fields(line)
		r, bad, after := parseRollforward(tok)
		if bad != "" || after != "" {
			return
		}
		if r.query && (r.stop || r.endOfLogs || r.to != "") || r.to != "" && !slices.Contains(tok, r.to) {
			t.Fatalf("inconsistent %+v from %q", r, line)
		}
	})
}
