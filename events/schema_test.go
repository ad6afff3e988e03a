package events

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestSamplesAgainstGoAndSchema checks <name>.valid.json and <name>.invalid.json of every type,
// and the further samples <name>.<case>.valid.json / <name>.<case>.invalid.json.
func TestSamplesAgainstGoAndSchema(t *testing.T) {
	for _, typ := range Types() {
		t.Run(sampleName(typ), func(t *testing.T) {
			sch := compileSchema(t, typ)
			extra := func(kind string) []string {
				names, err := filepath.Glob(filepath.Join("testdata", sampleName(typ)+".*."+kind+".json"))
				if err != nil {
					t.Fatal(err)
				}
				for i, n := range names {
					names[i] = filepath.Base(n)
				}
				return append([]string{sampleName(typ) + "." + kind + ".json"}, names...)
			}
			for _, name := range extra("valid") {
				valid := readSample(t, name)
				p, err := DecodeData(typ, valid)
				if err != nil {
					t.Errorf("%s: DecodeData: %v", name, err)
				} else if p.EventType() != typ {
					t.Errorf("%s decoded as %s", name, p.EventType())
				}
				if err := validateSchema(sch, valid); err != nil {
					t.Errorf("%s: schema: %v", name, err)
				}
			}
			for _, name := range extra("invalid") {
				invalid := readSample(t, name)
				_, err := DecodeData(typ, invalid)
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("%s: DecodeData error %v, want ErrInvalid", name, err)
				} else if !strings.Contains(err.Error(), typ) {
					t.Errorf("%s: error %q does not name the type", name, err)
				}
				if err := validateSchema(sch, invalid); err == nil {
					t.Errorf("%s passes the schema", name)
				}
			}
		})
	}
}

func TestSchemaLookup(t *testing.T) {
	for _, typ := range []string{"", Prefix, TypeTick, TypeKnativePing, Prefix + "nope", "backup.completed"} {
		if _, ok := Schema(typ); ok {
			t.Errorf("Schema(%q) found a schema", typ)
		}
	}
	// Every embedded schema belongs to a type, so none is left behind when a type goes away.
	known := map[string]bool{}
	for _, typ := range Types() {
		known["schemas/"+sampleName(typ)+".schema.json"] = true
	}
	files, err := fs.Glob(schemaFS, "schemas/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(known) {
		t.Errorf("%d schema files for %d types", len(files), len(known))
	}
	for _, f := range files {
		if !known[f] {
			t.Errorf("schema %s has no event type", f)
		}
	}
}

// The schemas catch what the Go decoder catches for single fields: spot checks beyond the samples.
func TestSchemaFieldRules(t *testing.T) {
	cases := []struct {
		typ, data string
	}{
		{TypeBackupCompleted, `{"database":"d","run_id":"r","type":"full","mode":"online","started_at":"2026-03-02T02:00:00Z","ended_at":"2026-03-02T03:00:00Z","image_timestamp":"20261302020012","key_crn":"k"}`},
		{TypeBackupCompleted, `{"database":"d","run_id":"r","type":"full","mode":"online","started_at":"2026-03-02T02:00:00Z","ended_at":"2026-03-02T03:00:00Z","image_timestamp":"20260302020012","key_crn":"k","sha256":"ABCDEF"}`},
		{TypeKeyRotated, `{"key_crn":"k","new_version":"2","rotated_at":"yesterday","detected_by":"poll"}`},
		{TypeAlert, `{"severity":"info","reason":"r","message":"m","failures":-1}`},
		{TypeRestoreCompleted, `{"database":"d","images":["a"],"extra":1}`},
		{TypeBackupFailed, `{"database":"d","run_id":"r","type":"delta","ended_at":"2026-03-02T03:00:00Z","class":"transient","message":"m","discarded_image":"20261302020012"}`},
		{TypeBackupCompleted, `{"database":"d","run_id":"r","type":"full","mode":"online","started_at":"2026-03-02T02:00:00Z","ended_at":"2026-03-02T03:00:00Z","image_timestamp":"20260302020012","key_crn":"k","note":["a","b"]}`},
	}
	for _, c := range cases {
		if _, err := DecodeData(c.typ, []byte(c.data)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s %s: DecodeData error %v, want ErrInvalid", c.typ, c.data, err)
		}
		if err := validateSchema(compileSchema(t, c.typ), []byte(c.data)); err == nil {
			t.Errorf("%s %s: schema accepts it", c.typ, c.data)
		}
	}
}
