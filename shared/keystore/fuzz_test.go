package keystore

import (
	"context"
	"testing"
)

// FuzzParseHeader: whatever the bytes (a sealed keystore is read from COS), ParseHeader returns
// a header that passes its own checks, or an error; it never panics nor allocates past the
// bounds. Open with a Key Protect that refuses everything never returns plaintext.
func FuzzParseHeader(f *testing.F) {
	good, err := Seal(context.Background(), newKMS(), keyCRN, bind, fp, []byte("archive"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:20])
	f.Add([]byte(magic))
	f.Add([]byte("ustar"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		if err := h.validate(); err != nil {
			t.Fatalf("ParseHeader accepted a header its validation refuses: %v", err)
		}
		if h.Size < 0 || h.Size > MaxArchive {
			t.Fatalf("size %d", h.Size)
		}
		if got, _, err := Open(context.Background(), &fakeKMS{keys: map[string][]byte{}}, b, Binding{Database: h.Database, Timestamp: h.Timestamp}); err == nil || got != nil {
			t.Fatalf("opened fuzz input with an unknown key: %q", got)
		}
	})
}
