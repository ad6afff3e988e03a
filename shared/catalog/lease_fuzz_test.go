package catalog_test

import (
	"bytes"
	"testing"

	"github.com/keyguard-dev/keyguard/shared/catalog"
)

// FuzzDecodeLease feeds DecodeLease what a reader of leases/ could find (any writer of the
// bucket can put a lease there): it must never panic, and whatever it accepts must be valid and
// survive an encode / decode round trip unchanged.
func FuzzDecodeLease(f *testing.F) {
	b, err := catalog.EncodeLease(sampleLease("abc123", "20261101020000", "20261102020000"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"schema_version":1}`))
	f.Add([]byte(`{"schema_version":1,"database":"db1","restore_id":"x","images":["20261101020000"],"created":"2026-11-24T03:00:00Z","renewed":"2026-11-24T03:00:00Z","until":"2026-11-24T03:30:00+01:00"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		l, err := catalog.DecodeLease(body)
		if err != nil {
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("DecodeLease accepted an invalid lease: %v", err)
		}
		enc, err := catalog.EncodeLease(l)
		if err != nil {
			t.Fatalf("EncodeLease of a decoded lease: %v", err)
		}
		back, err := catalog.DecodeLease(enc)
		if err != nil {
			t.Fatalf("DecodeLease of an encoded lease: %v\n%s", err, enc)
		}
		again, err := catalog.EncodeLease(back)
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("round trip changed the lease: %v\n%s\n%s", err, enc, again)
		}
	})
}
