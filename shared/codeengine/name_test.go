package codeengine_test

import (
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/shared/codeengine"
)

func TestJobRunName(t *testing.T) {
	long := strings.Repeat("db-", 40) + "full"
	tests := []struct {
		name   string
		runID  string
		want   string // exact name, when known
		prefix string // else the name starts with this and ends with "-" + 10 hex digits
	}{
		{name: "already a name", runID: "run-1", want: "kg-run-1"},
		{name: "scheduler run id", runID: "sales-prod-full-20260302T020000Z-a0", prefix: "kg-sales-prod-full-20260302t020000z-a0-"},
		{name: "underscores and case", runID: "Sales_DB", prefix: "kg-sales-db-"},
		{name: "leading and trailing dash", runID: "-run-", prefix: "kg-run-"},
		{name: "double dash", runID: "a--b", prefix: "kg-a-b-"},
		{name: "non ascii", runID: "büro-1", prefix: "kg-b-ro-1-"},
		{name: "empty", runID: "", prefix: "kg-"},
		{name: "only symbols", runID: "_/_", prefix: "kg-"},
		{name: "longest exact", runID: strings.Repeat("a", 60), want: "kg-" + strings.Repeat("a", 60)},
		{name: "one too long", runID: strings.Repeat("a", 61), prefix: "kg-" + strings.Repeat("a", 49) + "-"},
		{name: "long", runID: long, prefix: "kg-" + strings.TrimRight(long[:49], "-") + "-"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := codeengine.JobRunName(tt.runID)
			if !codeengine.ValidName(got) || len(got) > codeengine.MaxNameLength {
				t.Fatalf("JobRunName(%q) = %q is not a valid Code Engine name", tt.runID, got)
			}
			if got != codeengine.JobRunName(tt.runID) {
				t.Fatal("not deterministic")
			}
			if tt.want != "" && got != tt.want {
				t.Fatalf("JobRunName(%q) = %q, want %q", tt.runID, got, tt.want)
			}
			if tt.prefix != "" {
				rest, ok := strings.CutPrefix(got, tt.prefix)
				if !ok || len(rest) != 10 || strings.Trim(rest, "0123456789abcdef") != "" {
					t.Fatalf("JobRunName(%q) = %q, want %q + 10 hex digits", tt.runID, got, tt.prefix)
				}
			}
			if other, dup := seen[got]; dup {
				t.Fatalf("%q and %q both map to %q", other, tt.runID, got)
			}
			seen[got] = tt.runID
		})
	}
	if codeengine.JobRunName("Sales_DB") == codeengine.JobRunName("sales-db") {
		t.Fatal("run ids that differ only in what sanitising drops share a name")
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{
		"keyguard-runner": true, "a": true, "0": true, strings.Repeat("a", 63): true,
		"": false, "-a": false, "a-": false, "A": false, "a_b": false, strings.Repeat("a", 64): false,
	} {
		if got := codeengine.ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %t, want %t", s, got, want)
		}
	}
}

func FuzzJobRunName(f *testing.F) {
	for _, s := range []string{"", "run-1", "Sales_DB", "sales-db", strings.Repeat("x", 200), "-", "a--b", "\u212a", "ü"} {
		f.Add(s, s+"x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		na := codeengine.JobRunName(a)
		if !codeengine.ValidName(na) || !strings.HasPrefix(na, codeengine.NamePrefix) {
			t.Fatalf("JobRunName(%q) = %q is not a valid keyguard job run name", a, na)
		}
		if na != codeengine.JobRunName(a) {
			t.Fatalf("JobRunName(%q) is not deterministic", a)
		}
		if a != b && na == codeengine.JobRunName(b) {
			t.Fatalf("%q and %q share the name %q", a, b, na)
		}
	})
}
