package catalog_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
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
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", name, diff(string(want), string(got)))
	}
}

// diff shows the first differing lines.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + itoa(i+1) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return "(no line differs)"
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// richEntry uses every field.
func richEntry() catalog.Entry {
	e := catalogtest.Sample("orders", "20240313170000", events.Delta, "20240313090000")
	e.Mode = events.Offline
	e.Scope = catalog.ScopeTablespace
	e.Tablespaces = []string{"USERSPACE1", "TS_ORDERS"}
	e.Images = append(e.Images, catalog.Object{Key: catalog.ImageKey("orders", e.ImageTimestamp, "ORDERS.3.db2inst1.DBPART000.20240313170000.002"), Size: 7, SHA256: strings.Repeat("ab", 32)})
	e.SizeBytes = e.Images[0].Size + 7
	e.LogRange = catalog.LogRange{First: "S0000120.LOG", Last: "S0000123.LOG"}
	e.KeyVersion = "4d3c2b1a-0000-4000-8000-0000000000v2"
	e.Keystore = &catalog.Object{Key: catalog.ImageKey("orders", e.ImageTimestamp, "keystore.p12"), Size: 2048, SHA256: strings.Repeat("cd", 32)}
	e.Verification.Detail = "Image Verification Complete - successful."
	e.StartedAt = e.StartedAt.In(time.FixedZone("EST", -5*3600))
	return e
}

func TestEncodeGolden(t *testing.T) {
	body, err := catalog.Encode(richEntry())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "entry.golden.json", body)
	back, err := catalog.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	again, err := catalog.Encode(back)
	if err != nil || !bytes.Equal(again, body) {
		t.Errorf("Encode(Decode(Encode(e))) differs: %v\n%s", err, again)
	}
	if back.StartedAt.Location() != time.UTC {
		t.Errorf("decoded instants are in %v, want UTC", back.StartedAt.Location())
	}
}

// discardedEntry is a delta that Db2 wrote and keyguard discarded after its upload failed.
func discardedEntry() catalog.Entry {
	e := catalogtest.Sample("orders", "20240313170000", events.Delta, "20240313090000")
	e.Images, e.SizeBytes = nil, 0
	e.Verification = catalog.Verification{Verified: true, Tool: "db2ckbkp", At: e.EndedAt, Detail: "Image Verification Complete - successful."}
	e.Discarded = &catalog.Discard{At: e.EndedAt.Add(time.Minute), Reason: "upload image: 503 Slow Down"}
	e.Notes = []string{"took a delta as asked"}
	return e
}

// TestEncodeVersions: an entry that needs none of version 2's fields (discarded, notes) is
// written as version 1, byte for byte as before, so that readers of version 1 still read it;
// one that does is written as version 2.
func TestEncodeVersions(t *testing.T) {
	body, err := catalog.Encode(discardedEntry())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "entry.discarded.golden.json", body)
	if !bytes.Contains(body, []byte(`"schema_version": 2,`)) {
		t.Errorf("a discarded entry is not written as version 2:\n%s", body)
	}
	back, err := catalog.Decode(body)
	if err != nil || !back.IsDiscarded() || back.Discarded.Reason != "upload image: 503 Slow Down" {
		t.Fatalf("Decode = %+v, %v", back, err)
	}
	plain, err := catalog.Encode(catalogtest.Sample("db1", "20240303010000", events.Full, ""))
	if err != nil || !bytes.HasPrefix(plain, []byte("{\n  \"schema_version\": 1,")) {
		t.Errorf("a plain entry is not written as version 1: %v\n%s", err, plain)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(e *catalog.Entry)
		want string // substring of the error; "" = valid
	}{
		{"sample", func(e *catalog.Entry) {}, ""},
		{"rich", func(e *catalog.Entry) { *e = richEntry() }, ""},
		{"full", func(e *catalog.Entry) { e.Type, e.ParentTimestamp = events.Full, "" }, ""},
		{"external image without checksum", func(e *catalog.Entry) {
			e.Images = []catalog.Object{{Key: "db2oncloud://crn:v1:x/backups/1", Size: 0}}
		}, ""},
		{"unverified with detail", func(e *catalog.Entry) {
			e.Verification = catalog.Verification{Detail: "db2ckbkp: not run"}
		}, ""},
		{"bad database", func(e *catalog.Entry) { e.Database = "a/b" }, "database"},
		{"short timestamp", func(e *catalog.Entry) { e.ImageTimestamp = "2024031317" }, "image_timestamp"},
		{"impossible timestamp", func(e *catalog.Entry) { e.ImageTimestamp = "20241332170000" }, "image_timestamp"},
		{"signed timestamp", func(e *catalog.Entry) { e.ImageTimestamp = "+2024031317000" }, "image_timestamp"},
		{"type", func(e *catalog.Entry) { e.Type = "weekly" }, "type"},
		{"mode", func(e *catalog.Entry) { e.Mode = "" }, "mode"},
		{"scope", func(e *catalog.Entry) { e.Scope = "" }, "scope"},
		{"tablespaces on database scope", func(e *catalog.Entry) { e.Tablespaces = []string{"X"} }, "tablespaces must be empty"},
		{"tablespace scope without tablespaces", func(e *catalog.Entry) { e.Scope = catalog.ScopeTablespace }, "tablespaces are required"},
		{"repeated tablespace", func(e *catalog.Entry) {
			e.Scope, e.Tablespaces = catalog.ScopeTablespace, []string{"A", "A"}
		}, "repeated"},
		{"full with parent", func(e *catalog.Entry) { e.Type = events.Full }, "must be empty for a full"},
		{"delta without parent", func(e *catalog.Entry) { e.ParentTimestamp = "" }, "parent_timestamp must be 14 digits"},
		{"parent is the image", func(e *catalog.Entry) { e.ParentTimestamp = e.ImageTimestamp }, "differ from image_timestamp"},
		// Db2 timestamps are local time: in the repeated hour of a fall-back day a delta can carry
		// an earlier timestamp than its parent. Chain checks the order by UTC instants.
		{"parent timestamp later (fall-back hour)", func(e *catalog.Entry) {
			e.ImageTimestamp, e.ParentTimestamp = "20241103011000", "20241103013000"
			e.Images[0].Key = catalog.ImageKey("db1", e.ImageTimestamp, "x")
		}, ""},
		{"no times", func(e *catalog.Entry) { e.StartedAt = time.Time{} }, "started_at and ended_at"},
		{"ends before start", func(e *catalog.Entry) { e.EndedAt = e.StartedAt.Add(-time.Second) }, "ended_at is before"},
		{"year 10000 in UTC", func(e *catalog.Entry) {
			e.EndedAt = time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("W", -2*3600))
		}, "1970-9999"},
		{"no images", func(e *catalog.Entry) { e.Images = nil }, "at least one"},
		{"image without checksum", func(e *catalog.Entry) { e.Images[0].SHA256 = "" }, "sha256 is required"},
		{"upper-case checksum", func(e *catalog.Entry) { e.Images[0].SHA256 = strings.ToUpper(e.Images[0].SHA256) }, "lowercase hex"},
		{"image of another database", func(e *catalog.Entry) { e.Images[0].Key = "images/other/x" }, "not under images/db1/"},
		{"dot segment", func(e *catalog.Entry) { e.Images[0].Key = "images/db1/../x" }, "dot segment"},
		{"control character", func(e *catalog.Entry) { e.Images[0].Key = "images/db1/\x00" }, "control"},
		{"repeated image", func(e *catalog.Entry) { e.Images = append(e.Images, e.Images[0]) }, "repeated"},
		{"negative size", func(e *catalog.Entry) { e.Images[0].Size = -1 }, "size is negative"},
		{"negative size_bytes", func(e *catalog.Entry) { e.SizeBytes = -1 }, "size_bytes"},
		{"log last without first", func(e *catalog.Entry) { e.LogRange.Last = "S1.LOG" }, "log_range.last"},
		{"no key", func(e *catalog.Entry) { e.KeyCRN = "" }, "key_crn"},
		{"keystore is an image", func(e *catalog.Entry) { k := e.Images[0]; e.Keystore = &k }, "also an image"},
		{"verified without tool", func(e *catalog.Entry) { e.Verification.Tool = "" }, "needs tool and at"},
		{"long detail", func(e *catalog.Entry) { e.Verification.Detail = strings.Repeat("x", 5000) }, "detail"},
		{"no run id", func(e *catalog.Entry) { e.RunID = "" }, "run_id"},
		{"no executor", func(e *catalog.Entry) { e.Executor = "" }, "executor"},
		{"notes", func(e *catalog.Entry) {
			e.Notes = []string{"took a full backup: Db2 would build the delta on a discarded image"}
		}, ""},
		{"empty note", func(e *catalog.Entry) { e.Notes = []string{""} }, "notes[0]"},
		{"too many notes", func(e *catalog.Entry) { e.Notes = slices.Repeat([]string{"n"}, catalog.MaxNotes+1) }, "notes"},
		{"long note", func(e *catalog.Entry) { e.Notes = []string{strings.Repeat("x", 5000)} }, "notes[0]"},
		{"discarded without images", func(e *catalog.Entry) {
			e.Discarded = &catalog.Discard{At: e.EndedAt, Reason: "db2ckbkp found 1 error(s)"}
			e.Images, e.SizeBytes, e.Verification = nil, 0, catalog.Verification{}
		}, ""},
		{"discarded delta without parent", func(e *catalog.Entry) {
			e.Discarded = &catalog.Discard{At: e.EndedAt, Reason: "upload failed"}
			e.ParentTimestamp = ""
		}, ""},
		{"discarded without reason", func(e *catalog.Entry) { e.Discarded = &catalog.Discard{At: e.EndedAt} }, "discarded.reason"},
		{"discarded without time", func(e *catalog.Entry) { e.Discarded = &catalog.Discard{Reason: "x"} }, "discarded.at"},
		{"discarded image still checked", func(e *catalog.Entry) {
			e.Discarded = &catalog.Discard{At: e.EndedAt, Reason: "x"}
			e.Images[0].SHA256 = ""
		}, "sha256 is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := catalogtest.Sample("db1", "20240313170000", events.Delta, "20240313090000")
			tc.edit(&e)
			err := e.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Fatalf("Validate = nil, want an error about %q", tc.want)
			case tc.want != "" && (!errors.Is(err, catalog.ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want ErrInvalid about %q", err, tc.want)
			}
			if _, encErr := catalog.Encode(e); (encErr == nil) != (err == nil) {
				t.Errorf("Encode = %v, Validate = %v: they must agree", encErr, err)
			}
		})
	}
}

func TestDecodeStrict(t *testing.T) {
	good, err := catalog.Encode(catalogtest.Sample("db1", "20240303010000", events.Full, ""))
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	cases := []struct {
		name, body, want string
	}{
		{"good", s, ""},
		{"unknown field", strings.Replace(s, `"database"`, `"colour": "blue", "database"`, 1), "unknown field"},
		{"trailing data", s + "{}", "data after"},
		{"trailing garbage", s + "]", "data after"},
		{"no schema version", strings.Replace(s, `"schema_version": 1,`, "", 1), "schema_version 0"},
		{"newer schema", strings.Replace(s, `"schema_version": 1,`, `"schema_version": 4,`, 1), "newer"},
		{"version 2 without its fields", strings.Replace(s, `"schema_version": 1,`, `"schema_version": 2,`, 1), ""},
		{"invalid entry", strings.Replace(s, `"run_id": "run-20240303010000"`, `"run_id": ""`, 1), "run_id"},
		{"wrong type", strings.Replace(s, `"size_bytes": 14680064`, `"size_bytes": "big"`, 1), "size_bytes"},
		{"not an object", `[]`, "cannot unmarshal"},
		{"empty", ``, "EOF"},
		{"too large", s + strings.Repeat(" ", catalog.MaxEncodedSize), "more than"},
		{"discarded in version 1", strings.Replace(s, `"run_id"`, `"discarded": {"at": "2024-03-03T01:20:00Z", "reason": "x"}, "run_id"`, 1), "schema_version 2"},
		{"notes in version 1", strings.Replace(s, `"run_id"`, `"notes": ["x"], "run_id"`, 1), "schema_version 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := catalog.Decode([]byte(tc.body))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Decode = %v", err)
			case tc.want != "" && (err == nil || !errors.Is(err, catalog.ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Decode = %v, want ErrInvalid about %q", err, tc.want)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	e := catalogtest.Sample("db1", "20240303010000", events.Full, "")
	if got, want := e.Key(), "catalog/db1/20240303010000-full.json"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
	if got, want := catalog.ImageKey("db1", "20240303010000", "f.001"), "images/db1/20240303010000/f.001"; got != want {
		t.Errorf("ImageKey = %q, want %q", got, want)
	}
	if got := catalog.Timestamp(time.Date(2024, 3, 3, 1, 2, 3, 0, time.UTC)); got != "20240303010203" {
		t.Errorf("Timestamp = %q", got)
	}
	if (catalog.Object{Key: "images/db1/x"}).External() || !(catalog.Object{Key: "s3://b/k"}).External() {
		t.Error("External misclassifies")
	}
}

// TestValidTimestampAgreesWithTimeParse: ValidTimestamp accepts exactly what
// time.Parse(TimestampLayout) accepts among 14-digit strings (leap years, month lengths, hours).
func TestValidTimestampAgreesWithTimeParse(t *testing.T) {
	check := func(s string) {
		_, err := time.Parse(catalog.TimestampLayout, s)
		if got := catalog.ValidTimestamp(s); got != (err == nil) {
			t.Errorf("ValidTimestamp(%q) = %v, time.Parse: %v", s, got, err)
		}
	}
	for _, year := range []string{"0000", "1900", "1970", "2000", "2023", "2024", "2100", "9999"} {
		for month := 0; month <= 13; month++ {
			for day := 0; day <= 32; day++ {
				check(fmt.Sprintf("%s%02d%02d000000", year, month, day))
			}
		}
	}
	for _, hms := range []string{"235959", "240000", "236000", "235960", "000000", "995999"} {
		check("20240229" + hms)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, 14)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		check(string(b))
	}
}

// TestPartitionedEntry: an entry with partitions is schema version 3 (golden), round-trips, and
// breaks the rules when a partition names no image, two are the catalog partition, or numbers
// repeat; an entry without partitions keeps its older version, so version 1 and 2 entries still
// decode as before.
func TestPartitionedEntry(t *testing.T) {
	e := catalogtest.Partitioned(catalogtest.Sample("sales", "20240313170000", events.Full, ""), 0, 1, 2)
	e.LogRange = catalog.LogRange{First: "S0000120.LOG", Last: "S0000121.LOG"}
	body, err := catalog.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "entry.partitioned.golden.json", body)
	if !bytes.Contains(body, []byte(`"schema_version": 3`)) {
		t.Fatalf("a partitioned entry is not version 3:\n%s", body)
	}
	back, err := catalog.Decode(body)
	if err != nil || !catalogtest.Equal(back, e) {
		t.Fatalf("round trip: %v\n%+v", err, back)
	}
	if n, ok := back.CatalogPartition(); !ok || n != 0 {
		t.Fatalf("catalog partition %d %v", n, ok)
	}
	if s := catalog.Summary(e); len(s.Partitions) != 3 || s.Partitions[1].Image != "" || !s.Partitions[0].Catalog {
		t.Fatalf("summary partitions %+v", s.Partitions)
	}
	plain, err := catalog.Encode(catalogtest.Sample("sales", "20240313170000", events.Full, ""))
	if err != nil || !bytes.Contains(plain, []byte(`"schema_version": 1`)) {
		t.Fatalf("an entry without partitions: %v\n%s", err, plain)
	}
	if _, err := catalog.Decode(bytes.Replace(body, []byte(`"schema_version": 3`), []byte(`"schema_version": 2`), 1)); !errors.Is(err, catalog.ErrInvalid) {
		t.Errorf("partitions under version 2 = %v, want ErrInvalid", err)
	}
	for name, change := range map[string]func(*catalog.Entry){
		"no image":       func(e *catalog.Entry) { e.Partitions[1].Image = "images/sales/x" },
		"two catalogs":   func(e *catalog.Entry) { e.Partitions[1].Catalog = true },
		"no catalog":     func(e *catalog.Entry) { e.Partitions[0].Catalog = false },
		"repeated":       func(e *catalog.Entry) { e.Partitions[1].Number = 0 },
		"out of range":   func(e *catalog.Entry) { e.Partitions[2].Number = 1000 },
		"image required": func(e *catalog.Entry) { e.Partitions[2].Image = "" },
	} {
		bad := e
		bad.Partitions = slices.Clone(e.Partitions)
		change(&bad)
		if err := bad.Validate(); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
}

// TestEntrySizeWithLogRange reports the figure of the stored size of an entry with a log range
// (one image, and 4 partitions) beside the same entry without one.
func TestEntrySizeWithLogRange(t *testing.T) {
	e := catalogtest.Sample("sales", "20240313170000", events.Full, "")
	without, err := catalog.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	e.LogRange = catalog.LogRange{First: "S0000120.LOG", Last: "S0000123.LOG"}
	with, err := catalog.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := catalog.Encode(catalogtest.Partitioned(e, 0, 1, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	if len(with) <= len(without) || len(with)-len(without) > 100 || len(parts) > 4<<10 {
		t.Fatalf("sizes: %d without a log range, %d with, %d with 4 partitions", len(without), len(with), len(parts))
	}
	t.Logf("catalog entry: %d bytes without a log range, %d with (+%d), %d with a log range and 4 partitions",
		len(without), len(with), len(with)-len(without), len(parts))
}
