package catalog_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
)

// sampleRows are summaries of every shape: fulls, chains, a table space backup, a discarded
// image without a parent, a fraction of a second, a key version left empty, a log range.
func sampleRows() []catalog.Entry {
	full := catalogtest.Sample("db1", "20240303010000", events.Full, "")
	incr := catalogtest.Sample("db1", "20240304010000", events.Incremental, full.ImageTimestamp)
	incr.LogRange = catalog.LogRange{First: "S0000001.LOG", Last: "S0000009.LOG"}
	incr.StartedAt = incr.StartedAt.Add(123456789 * time.Nanosecond)
	delta := catalogtest.Sample("db1", "20240304090000", events.Delta, incr.ImageTimestamp)
	delta.KeyVersion = ""
	delta.Verification = catalog.Verification{}
	ts := catalogtest.Sample("db1", "20240305010000", events.Full, "")
	ts.Scope, ts.Tablespaces = catalog.ScopeTablespace, []string{"USERSPACE1", "TS, with comma"}
	ts.KeyCRN = catalogtest.KeyCRN + "-other"
	gone := catalogtest.Discard(catalogtest.Sample("db1", "20240306010000", events.Delta, ""), "upload image: 503 Slow Down")
	gone.ParentTimestamp = ""
	var out []catalog.Entry
	for _, e := range []catalog.Entry{full, incr, delta, ts, gone} {
		if err := e.Validate(); err != nil {
			panic(err)
		}
		out = append(out, catalog.Summary(e))
	}
	return out
}

func sampleHead() *catalog.IndexHead {
	at := time.Date(2024, 3, 7, 1, 2, 3, 0, time.UTC)
	return &catalog.IndexHead{
		Database: "db1", Generation: 42, Rebuilt: at, Deletions: 7, RunsPruned: at,
		Base:     &catalog.IndexBaseRef{Key: "index/db1/base-40-0123456789abcdef.gz", Count: 3, Size: 100, SHA256: strings.Repeat("ab", 32)},
		Rows:     sampleRows(),
		Removed:  []string{"20240101010000-full", "20240102010000-delta"},
		Deleting: []catalog.IndexMark{{Name: "20240103010000-full", Since: at, Where: 'b'}, {Name: "20240304010000-incremental", Since: at, Where: 'r'}},
		Pending:  []catalog.IndexMark{{Name: "20240307010000-delta", Since: at}},
		Skipped:  []catalog.Skipped{{Key: "catalog/db1/notes.txt", Reason: "not an entry name"}},
		Retained: &catalog.IndexRetained{KeepFulls: 2, KeepDays: 14, At: at, Due: at.Add(time.Hour), Through: "20240306010000-delta",
			ThroughStarted: at.Add(-time.Hour), Count: 5, Rows: 5, Base: "index/db1/base-40-0123456789abcdef.gz", Deletions: 7,
			InUse: []string{"20240303010000", "20240304010000"}},
	}
}

func TestIndexHeadRoundTrip(t *testing.T) {
	for _, h := range []*catalog.IndexHead{
		sampleHead(),
		{Database: "db1", Generation: 1, Building: time.Date(2024, 3, 7, 1, 2, 3, 4, time.UTC)},
		{Database: "db1", Generation: 3},
	} {
		body := catalog.EncodeIndexHead(h)
		got, err := catalog.DecodeIndexHead(body)
		if err != nil {
			t.Fatalf("DecodeIndexHead: %v\n%s", err, body)
		}
		if again := catalog.EncodeIndexHead(got); !bytes.Equal(again, body) {
			t.Fatalf("round trip changed the head:\n%s\n%s", body, again)
		}
		if len(got.Rows) != len(h.Rows) {
			t.Fatalf("%d rows, want %d", len(got.Rows), len(h.Rows))
		}
		for i := range h.Rows {
			if !catalogtest.Equal(withDetails(got.Rows[i]), withDetails(h.Rows[i])) {
				t.Errorf("row %d = %+v\nwant %+v", i, got.Rows[i], h.Rows[i])
			}
		}
	}
}

// withDetails fills what a summary leaves out, so that Encode compares summaries.
func withDetails(e catalog.Entry) catalog.Entry {
	e.Executor = "x"
	if e.Verification.Verified {
		e.Verification.Tool, e.Verification.At = "t", e.EndedAt
	}
	if !e.IsDiscarded() {
		e.Images = []catalog.Object{{Key: "x://y"}}
	}
	return e
}

func TestIndexBaseRoundTrip(t *testing.T) {
	rows := sampleRows()
	body, err := catalog.EncodeIndexBase("db1", rows)
	if err != nil {
		t.Fatal(err)
	}
	got, err := catalog.DecodeIndexBaseText(body, "db1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("%d rows, want %d", len(got), len(rows))
	}
	for i := range rows {
		if !catalogtest.Equal(withDetails(got[i]), withDetails(rows[i])) {
			t.Errorf("row %d = %+v\nwant %+v", i, got[i], rows[i])
		}
	}
	if _, err := catalog.DecodeIndexBaseText(body, "db2"); !errors.Is(err, catalog.ErrIndex) {
		t.Errorf("a base of db1 read as db2's = %v, want ErrIndex", err)
	}
	empty, err := catalog.EncodeIndexBase("db1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := catalog.DecodeIndexBaseText(empty, "db1"); err != nil || len(got) != 0 {
		t.Errorf("empty base = %v, %v", got, err)
	}
}

// TestIndexPartitions: a summary with partitions round-trips through a head and a base of
// version 2; a head or base without them is still written as version 1, which this reader keeps
// reading (old index lines stay decodable).
func TestIndexPartitions(t *testing.T) {
	rows := sampleRows()
	plain := string(catalog.EncodeIndexHead(&catalog.IndexHead{Database: "db1", Generation: 3, Rows: rows}))
	if !strings.HasPrefix(plain, "keyguard-catalog-index\t1\thead\n") {
		t.Fatalf("a head without partitions is not version 1:\n%s", plain)
	}
	if _, err := catalog.DecodeIndexHead([]byte(plain)); err != nil {
		t.Fatalf("version 1 head: %v", err)
	}
	rows[0].Partitions = []catalog.Partition{{Number: 0, Catalog: true}, {Number: 1}, {Number: 12}}
	body := catalog.EncodeIndexHead(&catalog.IndexHead{Database: "db1", Generation: 3, Rows: rows})
	if !strings.HasPrefix(string(body), "keyguard-catalog-index\t2\thead\n") || !strings.Contains(string(body), "\t0*,1,12\n") {
		t.Fatalf("a head with partitions:\n%s", body)
	}
	h, err := catalog.DecodeIndexHead(body)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.Rows[0].Partitions, rows[0].Partitions) || len(h.Rows[1].Partitions) != 0 {
		t.Fatalf("partitions after a round trip: %+v / %+v", h.Rows[0].Partitions, h.Rows[1].Partitions)
	}
	base, err := catalog.EncodeIndexBase("db1", rows)
	if err != nil {
		t.Fatal(err)
	}
	got, err := catalog.DecodeIndexBaseText(base, "db1")
	if err != nil || !slices.Equal(got[0].Partitions, rows[0].Partitions) {
		t.Fatalf("base with partitions: %+v %v", got, err)
	}
}

// TestIndexHeadDecodeIsStrict: each way a head can be wrong is ErrIndex, naming the problem.
func TestIndexHeadDecodeIsStrict(t *testing.T) {
	good := string(catalog.EncodeIndexHead(sampleHead()))
	row := good[strings.Index(good, "\ne\t")+1:]
	row = row[:strings.IndexByte(row, '\n')+1]
	cases := []struct {
		name, body, want string
	}{
		{"empty", "", "not a catalog index head"},
		{"other kind", strings.Replace(good, "\thead\n", "\tbase\n", 1), "not a catalog index head"},
		{"newer version", strings.Replace(good, "index\t1\t", "index\t3\t", 1), "newer than this reader"},
		{"partitions in version 1", strings.Replace(good, row, strings.TrimSuffix(row, "\n")+"\t0*,1\n", 1), "fields"},
		{"partitions unsorted", strings.Replace(strings.Replace(good, "index\t1\t", "index\t2\t", 1), row, strings.TrimSuffix(row, "\n")+"\t1,0*\n", 1), "ascend"},
		{"partitions without catalog", strings.Replace(strings.Replace(good, "index\t1\t", "index\t2\t", 1), row, strings.TrimSuffix(row, "\n")+"\t0,1\n", 1), "catalog partition"},
		{"partitions not numbers", strings.Replace(strings.Replace(good, "index\t1\t", "index\t2\t", 1), row, strings.TrimSuffix(row, "\n")+"\t0*,x\n", 1), "partition numbers"},
		{"partitions leading zero", strings.Replace(strings.Replace(good, "index\t1\t", "index\t2\t", 1), row, strings.TrimSuffix(row, "\n")+"\t0*,01\n", 1), "partition numbers"},
		{"no final newline", strings.TrimSuffix(good, "\n"), "no newline"},
		{"bad database", strings.Replace(good, "database\tdb1", "database\t../x", 1), "database"},
		{"unknown line", strings.Replace(good, "deletions\t7\n", "deletions\t7\nsurprise\t1\n", 1), "unknown line"},
		{"repeated line", strings.Replace(good, "deletions\t7\n", "deletions\t7\ndeletions\t7\n", 1), "repeated"},
		{"no generation", strings.Replace(good, "generation\t42\n", "", 1), "without generation"},
		{"leading zero", strings.Replace(good, "generation\t42", "generation\t042", 1), "not a decimal"},
		{"rows out of order", strings.Replace(good, row, "", 1) + row, "is not after"},
		{"row repeated", strings.Replace(good, row, row+row, 1), "is not after"},
		{"meta after rows", good + "removed\t20991231010000-full\n", "after the summaries"},
		{"unknown key", strings.Replace(good, row, strings.Replace(row, "\t0\trun-", "\t9\trun-", 1), 1), "not the number of a key"},
		{"short row", strings.Replace(good, row, "e\t20240303010000\tfull\n", 1), "fields"},
		{"bad type", strings.Replace(good, "\tfull\tonline", "\tweekly\tonline", 1), "type must be"},
		{"bad instant", strings.Replace(good, row, strings.Replace(row, "\t17094", "\t-17094", 1), 1), "Unix seconds"},
		{"zero fraction", strings.Replace(good, ".123456789\t", ".000000000\t", 1), "fraction"},
		{"ended before started", strings.Replace(good, row, swapInstants(row), 1), "ended_at is before started_at"},
		{"verified flag", strings.Replace(good, row, strings.Replace(row, "\t1\t", "\tyes\t", 1), 1), "verified"},
		{"reason without time", strings.Replace(good, "\t\t\n", "\t\treason\n", 1), "without its time"},
		{"base elsewhere", strings.Replace(good, "base\tindex/db1/", "base\tindex/db2/", 1), "not a base of db1"},
		{"base checksum", strings.Replace(good, strings.Repeat("ab", 32), "abc", 1), "checksum"},
		{"deleting where", strings.Replace(good, "\tb\n", "\tx\n", 1), "where"},
		{"deleting says rows", strings.Replace(good, "T01:02:03Z\tb\n", "T01:02:03Z\tr\n", 1), "in the rows"},
		{"removed and a row", strings.Replace(good, "removed\t20240102010000-delta\n", "removed\t20240102010000-delta\nremoved\t20240303010000-full\n", 1), "both a row and removed"},
		{"removed unsorted", strings.Replace(good, "removed\t20240102010000-delta\n", "removed\t20240101000000-delta\n", 1), "is not after"},
		{"removed not a name", strings.Replace(good, "removed\t20240102010000-delta\n", "removed\tnotes\n", 1), "not an entry name"},
		{"in use unsorted", strings.Replace(good, "20240303010000,20240304010000", "20240304010000,20240303010000", 1), "sorted timestamps"},
		{"control character", strings.Replace(good, "not an entry name", "not an\x01entry", 1), "control characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.body == good {
				t.Fatal("the case changes nothing")
			}
			_, err := catalog.DecodeIndexHead([]byte(tc.body))
			if !errors.Is(err, catalog.ErrIndex) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeIndexHead = %v, want ErrIndex about %q", err, tc.want)
			}
		})
	}
}

// swapInstants swaps a row's started and ended fields.
func swapInstants(row string) string {
	f := strings.Split(row, "\t")
	f[7], f[8] = f[8], f[7]
	return strings.Join(f, "\t")
}

func TestIndexBaseDecodeIsStrict(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	good, err := catalog.EncodeIndexBase("db1", sampleRows())
	if err != nil {
		t.Fatal(err)
	}
	text := gunzip(t, good)
	cases := []struct {
		name string
		body []byte
		want string
	}{
		{"not gzip", []byte("hello"), "EOF"},
		{"truncated", good[:len(good)/2], "unexpected EOF"},
		{"a head", gz(string(catalog.EncodeIndexHead(sampleHead()))), "not a catalog index base"},
		{"count too high", gz(strings.Replace(text, "count\t5", "count\t6", 1)), "the base says 6"},
		{"no count", gz(strings.Replace(text, "count\t5\n", "", 1)), "count"},
		{"unknown line", gz(text + "removed\t20240101010000-full\n"), "unknown line"},
		{"huge count", gz(strings.Replace(text, "count\t5", "count\t99999999", 1)), "count"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := catalog.DecodeIndexBaseText(tc.body, "db1")
			if !errors.Is(err, catalog.ErrIndex) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeIndexBaseText = %v, want ErrIndex about %q", err, tc.want)
			}
		})
	}
	// A gzip bomb stops at the limit instead of filling memory (the limit lowered to 1 MiB).
	catalog.LimitBaseText(t, 1<<20)
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zw.Write([]byte("keyguard-catalog-index\t1\tbase\ndatabase\tdb1\ncount\t0\n"))
	zw.Write(bytes.Repeat([]byte("k\t"+catalogtest.KeyCRN+"\t\n"), 16<<10))
	zw.Close()
	if _, err := catalog.DecodeIndexBaseText(bomb.Bytes(), "db1"); !errors.Is(err, catalog.ErrIndex) || !strings.Contains(err.Error(), "once decompressed") {
		t.Errorf("a base that inflates past the limit = %v, want ErrIndex", err)
	}
}

func gunzip(t testing.TB, b []byte) string {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// FuzzDecodeIndexHead: a head is outside input (anyone with write access to the bucket). The
// decoder must never panic, and a head it accepts must encode to a head that decodes to the
// same bytes again.
func FuzzDecodeIndexHead(f *testing.F) {
	f.Add(catalog.EncodeIndexHead(sampleHead()))
	f.Add(catalog.EncodeIndexHead(&catalog.IndexHead{Database: "db1", Generation: 1, Building: time.Date(2024, 3, 7, 1, 2, 3, 4, time.UTC)}))
	f.Add([]byte("keyguard-catalog-index\t1\thead\ndatabase\tdb1\ngeneration\t1\ndeletions\t0\n"))
	parted := sampleRows()
	parted[0].Partitions = []catalog.Partition{{Number: 0, Catalog: true}, {Number: 3}}
	f.Add(catalog.EncodeIndexHead(&catalog.IndexHead{Database: "db1", Generation: 2, Rows: parted}))
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := catalog.DecodeIndexHead(body)
		if err != nil {
			if !errors.Is(err, catalog.ErrIndex) {
				t.Fatalf("error %v does not wrap ErrIndex", err)
			}
			return
		}
		enc := catalog.EncodeIndexHead(h)
		back, err := catalog.DecodeIndexHead(enc)
		if err != nil {
			t.Fatalf("a decoded head does not decode once encoded: %v\n%s", err, enc)
		}
		if again := catalog.EncodeIndexHead(back); !bytes.Equal(again, enc) {
			t.Fatalf("round trip changed the head:\n%s\n%s", enc, again)
		}
	})
}

// FuzzDecodeIndexBase: the same for a base, given as its decompressed text (gzip's own reader
// is not ours to fuzz, and its checksum would stop the fuzzer); a base it accepts is encoded,
// decoded through gzip, and named by a head.
func FuzzDecodeIndexBase(f *testing.F) {
	good, err := catalog.EncodeIndexBase("db1", sampleRows())
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(gunzip(f, good)))
	f.Add([]byte("keyguard-catalog-index\t1\tbase\ndatabase\tdb1\ncount\t0\n"))
	parted := sampleRows()
	parted[1].Partitions = []catalog.Partition{{Number: 0, Catalog: true}, {Number: 3}}
	if pb, err := catalog.EncodeIndexBase("db1", parted); err == nil {
		f.Add([]byte(gunzip(f, pb)))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		rows, err := catalog.ParseIndexBaseText(string(text), "db1")
		if err != nil {
			if !errors.Is(err, catalog.ErrIndex) {
				t.Fatalf("error %v does not wrap ErrIndex", err)
			}
			return
		}
		enc, err := catalog.EncodeIndexBase("db1", rows)
		if err != nil {
			t.Fatal(err)
		}
		back, err := catalog.DecodeIndexBaseText(enc, "db1")
		if err != nil || len(back) != len(rows) {
			t.Fatalf("a decoded base does not decode once encoded: %v", err)
		}
		sum := sha256.Sum256(enc)
		ref := catalog.IndexBaseRef{Key: "index/db1/base-1-0123456789abcdef.gz", Count: len(rows), Size: int64(len(enc)), SHA256: hex.EncodeToString(sum[:])}
		h := &catalog.IndexHead{Database: "db1", Generation: 2, Base: &ref}
		if _, err := catalog.DecodeIndexHead(catalog.EncodeIndexHead(h)); err != nil {
			t.Fatalf("a head naming the base: %v", err)
		}
	})
}
