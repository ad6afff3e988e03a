package logchain_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/logchain"
)

func files(chain int, nums ...int) []logchain.File {
	var out []logchain.File
	for _, n := range nums {
		out = append(out, logchain.File{Number: n, Chain: chain, Key: logchain.Name(n), Modified: time.Date(2024, 3, 1, 0, n, 0, 0, time.UTC)})
	}
	return out
}

func span(a, b int) []int {
	var out []int
	for n := a; n <= b; n++ {
		out = append(out, n)
	}
	return out
}

func TestVerify(t *testing.T) {
	cases := []struct {
		name    string
		files   []logchain.File
		need    logchain.Need
		gaps    []logchain.Gap
		broken  bool
		missing int
	}{
		{name: "complete", files: files(0, span(3, 9)...), need: logchain.Need{From: 3, FirstActive: 10, Chain: -1}},
		{name: "one missing inside the range", files: files(0, 3, 4, 6, 7, 8, 9), need: logchain.Need{From: 3, FirstActive: 10, Chain: -1},
			gaps: []logchain.Gap{{First: 5, Last: 5, Kind: logchain.Missing}}, broken: true, missing: 1},
		{name: "missing before From does not break", files: files(0, 1, 3, 4, 5), need: logchain.Need{From: 3, FirstActive: 6, Chain: -1}},
		{name: "archiving behind: below the first active log is missing", files: files(0, 3, 4), need: logchain.Need{From: 3, FirstActive: 7, Chain: -1},
			gaps: []logchain.Gap{{First: 5, Last: 6, Kind: logchain.Missing}}, broken: true, missing: 2},
		{name: "the active log is not archived yet, not missing", files: files(0, 3, 4, 5), need: logchain.Need{From: 3, FirstActive: 6, Chain: -1}},
		{name: "first needed file gone", files: files(0, 4, 5), need: logchain.Need{From: 3, FirstActive: 6, Chain: -1},
			gaps: []logchain.Gap{{First: 3, Last: 3, Kind: logchain.Missing}}, broken: true, missing: 1},
		{name: "unknown need: from the oldest to the newest archived", files: files(0, 3, 5), need: logchain.Need{From: -1, FirstActive: -1, Chain: -1},
			gaps: []logchain.Gap{{First: 4, Last: 4, Kind: logchain.Missing}}, broken: true, missing: 1},
		{name: "the newest chain only", files: append(files(0, 1, 2, 3), files(1, 3, 4)...), need: logchain.Need{From: 3, FirstActive: 5, Chain: -1}},
		{name: "empty archive", need: logchain.Need{From: 3, FirstActive: 5, Chain: -1},
			gaps: []logchain.Gap{{First: 3, Last: 4, Kind: logchain.Missing}}, broken: true, missing: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := logchain.Verify(c.files, c.need)
			if !slices.Equal(r.Gaps, c.gaps) || r.Broken != c.broken || r.Missing != c.missing {
				t.Fatalf("gaps %v broken %v missing %d; want %v %v %d\n%s", r.Gaps, r.Broken, r.Missing, c.gaps, c.broken, c.missing, r.Summary())
			}
		})
	}
}

func TestVerifyBoundsGapsAndNamesThem(t *testing.T) {
	var nums []int
	for n := 0; n < 200; n += 2 {
		nums = append(nums, n)
	}
	r := logchain.Verify(files(0, nums...), logchain.Need{From: 0, FirstActive: 200, Chain: -1})
	if len(r.Gaps) != logchain.MaxGaps || r.GapsOmitted != 100-logchain.MaxGaps || r.Missing != 100 || !r.Broken {
		t.Fatalf("%d gaps, %d omitted, %d missing", len(r.Gaps), r.GapsOmitted, r.Missing)
	}
	if g, ok := r.FirstMissing(10, 20); !ok || g.First != 11 {
		t.Fatalf("FirstMissing = %v %v", g, ok)
	}
	if s := r.Summary(); !strings.Contains(s, "S0000001.LOG missing") || !strings.Contains(s, "and 68 more") || !strings.Contains(s, "S0000200.LOG on (the active log path)") {
		t.Fatalf("summary %s", s)
	}
}

func TestRemovable(t *testing.T) {
	all := append(files(0, span(1, 9)...), files(1, 1, 2)...)
	got := logchain.Removable(all, logchain.Need{From: 4, Chain: 0}, false)
	if len(got) != 3 || got[0].Number != 1 || got[2].Number != 3 || got[0].Chain != 0 {
		t.Fatalf("removable %+v", got)
	}
	if got := logchain.Removable(all, logchain.Need{From: 4, Chain: 0}, true); got != nil {
		t.Fatalf("AUTO_DEL_REC_OBJ=ON: keyguard removes %+v", got)
	}
	if got := logchain.Removable(all, logchain.Need{From: -1, Chain: 0}, false); got != nil {
		t.Fatalf("need unknown: removes %+v", got)
	}
	// The newest chain by default; older chains are never removed.
	if got := logchain.Removable(all, logchain.Need{From: 2, Chain: -1}, false); len(got) != 1 || got[0].Chain != 1 {
		t.Fatalf("newest chain: %+v", got)
	}
}

func TestReportCodec(t *testing.T) {
	r := logchain.Verify(files(0, 3, 4, 6), logchain.Need{From: 3, FirstActive: 8, Chain: -1})
	r.Database, r.CheckedAt, r.Archive, r.Deleter = "sales", time.Date(2024, 3, 1, 5, 0, 0, 0, time.UTC), "/db2/archive/db2inst1/SALES", "keyguard"
	b, err := logchain.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := logchain.Decode(b)
	if err != nil || back.Summary() != r.Summary() || !back.Broken {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	for _, bad := range []string{`{}`, string(b) + `{}`, strings.Replace(string(b), `"missing": 2`, `"missing": -2`, 1), strings.Replace(string(b), `"deleter"`, `"unknown":1,"deleter"`, 1)} {
		if _, err := logchain.Decode([]byte(bad)); !errors.Is(err, logchain.ErrInvalid) {
			t.Errorf("decode %q = %v", bad, err)
		}
	}
}

// FuzzDecodeReport: keyguard check reads the report from the bucket.
func FuzzDecodeReport(f *testing.F) {
	r := logchain.Verify(files(0, 3, 4, 6), logchain.Need{From: 3, FirstActive: 8, Chain: -1})
	r.Database, r.CheckedAt = "sales", time.Date(2024, 3, 1, 5, 0, 0, 0, time.UTC)
	b, _ := logchain.Encode(r)
	f.Add(b)
	f.Add([]byte(`{"database":"x","checked_at":"2024-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := logchain.Decode(body)
		if err != nil {
			if !errors.Is(err, logchain.ErrInvalid) {
				t.Fatalf("%v does not wrap ErrInvalid", err)
			}
			return
		}
		_ = r.Summary()
		enc, err := logchain.Encode(r)
		if err != nil {
			t.Fatalf("a decoded report does not encode: %v", err)
		}
		if _, err := logchain.Decode(enc); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}
