package events

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestSamplesAgainstGoAndSchema(t *testing.T) {
	for _, typ := range Types() {
		t.Run(sampleName(typ), func(t *testing.T) {
			sch := compileSchema(t, typ)

			valid := readSample(t, sampleName(typ)+".valid.json")
			p, err := DecodeData(typ, valid)
			if err != nil {
				t.Errorf("valid sample: DecodeData: %v", err)
			} else if p.EventType() != typ {
				t.Errorf("valid sample decoded as %s", p.EventType())
			}
			if err := validateSchema(sch, valid); err != nil {
				t.Errorf("valid sample: schema: %v", err)
			}

			invalid := readSample(t, sampleName(typ)+".invalid.json")
			_, err = DecodeData(typ, invalid)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("invalid sample: DecodeData error %v, want ErrInvalid", err)
			} else if !strings.Contains(err.Error(), typ) {
				t.Errorf("invalid sample: error %q does not name the type", err)
			}
			if err := validateSchema(sch, invalid); err == nil {
				t.Errorf("invalid sample passes the schema")
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
