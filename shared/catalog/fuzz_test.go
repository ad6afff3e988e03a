package catalog_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
)

// FuzzDecode feeds Decode what a reader of COS could find: it must never panic, and whatever it
// accepts must be valid and survive an encode / decode round trip unchanged.
func FuzzDecode(f *testing.F) {
	if b, err := os.ReadFile("testdata/entry.golden.json"); err == nil {
		f.Add(b)
	}
	if b, err := os.ReadFile("testdata/entry.discarded.golden.json"); err == nil {
		f.Add(b)
	}
	if b, err := os.ReadFile("testdata/entry.partitioned.golden.json"); err == nil {
		f.Add(b)
	}
	for _, e := range []catalog.Entry{
		catalogtest.Sample("db1", "20240303010000", events.Full, ""),
		catalogtest.Sample("db1", "20240304010000", events.Incremental, "20240303010000"),
	} {
		b, err := catalog.Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"schema_version":1}`))
	f.Add([]byte(`{"schema_version":1,"database":"db1","image_timestamp":"20240303010000","type":"full","mode":"online","scope":"database","started_at":"2024-03-03T01:00:00Z","ended_at":"2024-03-03T01:00:00Z","images":[{"key":"x://y","size":0}],"size_bytes":0,"key_crn":"k","verification":{"verified":false},"run_id":"r","executor":"e"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := catalog.Decode(body)
		if err != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid entry: %v", err)
		}
		enc, err := catalog.Encode(e)
		if err != nil {
			t.Fatalf("Encode of a decoded entry: %v", err)
		}
		back, err := catalog.Decode(enc)
		if err != nil {
			t.Fatalf("Decode of an encoded entry: %v\n%s", err, enc)
		}
		again, err := catalog.Encode(back)
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("round trip changed the entry: %v\n%s\n%s", err, enc, again)
		}
	})
}
