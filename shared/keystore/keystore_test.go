package keystore

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const keyCRN = "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b001"

var fp = strings.Repeat("ab", 32)

// fakeKMS wraps with one in-memory AES-256-GCM key per key CRN, binding the AAD, and counts
// calls. Its fail field, when set, is returned by every call.
type fakeKMS struct {
	keys           map[string][]byte
	fail           error
	wraps, unwraps int
	lastWrappedKey []byte
	lastUnwrapAAD  []string
	version        string
	// corruptUnwrapped returns a data key with one bit changed.
	corruptUnwrapped bool
}

func newKMS() *fakeKMS { return &fakeKMS{keys: map[string][]byte{}, version: "v1"} }

func (f *fakeKMS) aead(ref string) cipher.AEAD {
	k, ok := f.keys[ref]
	if !ok {
		k = make([]byte, 32)
		_, _ = rand.Read(k)
		f.keys[ref] = k
	}
	b, _ := aes.NewCipher(k)
	g, _ := cipher.NewGCM(b)
	return g
}

func aadBytes(aad []string) []byte {
	var b []byte
	for _, a := range aad {
		b = binary.AppendUvarint(b, uint64(len(a)))
		b = append(b, a...)
	}
	return b
}

func (f *fakeKMS) Wrap(_ context.Context, ref string, key []byte, aad []string) ([]byte, string, error) {
	f.wraps++
	if f.fail != nil {
		return nil, "", f.fail
	}
	f.lastWrappedKey = bytes.Clone(key)
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	out := f.aead(ref).Seal(nonce, nonce, key, aadBytes(aad))
	return []byte(base64.StdEncoding.EncodeToString(out)), f.version, nil
}

func (f *fakeKMS) Unwrap(_ context.Context, ref string, wrapped []byte, aad []string) ([]byte, error) {
	f.unwraps++
	f.lastUnwrapAAD = aad
	if f.fail != nil {
		return nil, f.fail
	}
	raw, err := base64.StdEncoding.DecodeString(string(wrapped))
	if err != nil || len(raw) < 12 {
		return nil, errors.New("bad wrapped key")
	}
	key, err := f.aead(ref).Open(nil, raw[:12], raw[12:], aadBytes(aad))
	if err != nil {
		return nil, errUnwrap
	}
	if f.corruptUnwrapped {
		key[0] ^= 1
	}
	return key, nil
}

var (
	_ Wrapper   = (*fakeKMS)(nil)
	_ Unwrapper = (*fakeKMS)(nil)
)

// archive is a tar of a keystore and a stash with recognisable bytes.
func archive(t testing.TB) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range map[string]string{"db2keys.p12": "PKCS12-KEYSTORE-BYTES", "db2keys.sth": "STASH-PASSWORD-BYTES"} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var bind = Binding{Database: "sales", Timestamp: "20261124020000"}

func TestSealOpenRoundTrip(t *testing.T) {
	ctx := context.Background()
	kms := newKMS()
	plain := archive(t)
	sealed, err := Seal(ctx, kms, keyCRN, bind, fp, plain)
	if err != nil {
		t.Fatal(err)
	}
	// Bucket read access alone: no tar, no stash, no keystore bytes, no data key.
	if _, err := tar.NewReader(bytes.NewReader(sealed)).Next(); err == nil {
		t.Fatal("the sealed object reads as a tar archive")
	}
	for _, secret := range [][]byte{[]byte("STASH-PASSWORD-BYTES"), []byte("PKCS12-KEYSTORE-BYTES"), []byte("ustar"), kms.lastWrappedKey} {
		if bytes.Contains(sealed, secret) {
			t.Fatalf("sealed object contains %q", secret)
		}
	}
	if !IsSealed(sealed) || IsSealed(plain) {
		t.Fatal("IsSealed")
	}
	h, err := ParseHeader(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if h.KeyCRN != keyCRN || h.KeyVersion != "v1" || h.Fingerprint != fp || h.Size != int64(len(plain)) || h.Cipher != CipherAES256GCM ||
		h.Database != "sales" || h.Timestamp != "20261124020000" {
		t.Fatalf("header %+v", h)
	}
	got, h2, err := Open(ctx, kms, sealed, bind)
	if err != nil || !bytes.Equal(got, plain) || !reflect.DeepEqual(h2, h) {
		t.Fatalf("Open: %v", err)
	}
	if want := []string{aadLabel, "sales", "20261124020000"}; fmt.Sprint(kms.lastUnwrapAAD) != fmt.Sprint(want) {
		t.Fatalf("unwrap AAD %q, want %q", kms.lastUnwrapAAD, want)
	}
	// Two seals of one archive differ (fresh data key and nonce).
	again, _ := Seal(ctx, kms, keyCRN, bind, fp, plain)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals are equal")
	}
}

func TestSealRefuses(t *testing.T) {
	ctx := context.Background()
	down := errors.New("key protect down")
	tests := []struct {
		name    string
		w       Wrapper
		crn     string
		b       Binding
		fp      string
		archive []byte
		want    error
	}{
		{"no wrapper", nil, keyCRN, bind, fp, []byte("x"), ErrNoKeyProtect},
		{"wrap fails", &fakeKMS{keys: map[string][]byte{}, fail: down}, keyCRN, bind, fp, []byte("x"), down},
		{"too large", newKMS(), keyCRN, bind, fp, make([]byte, MaxArchive+1), ErrTooLarge},
		{"empty", newKMS(), keyCRN, bind, fp, nil, ErrFormat},
		{"no key", newKMS(), "", bind, fp, []byte("x"), ErrFormat},
		{"bad fingerprint", newKMS(), keyCRN, bind, "xyz", []byte("x"), ErrFormat},
		{"bad binding", newKMS(), keyCRN, Binding{Database: "sales"}, fp, []byte("x"), ErrFormat},
		{"no version", &fakeKMS{keys: map[string][]byte{}}, keyCRN, bind, fp, []byte("x"), ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w Wrapper
			if tc.w != nil {
				w = tc.w
			}
			out, err := Seal(ctx, w, tc.crn, tc.b, tc.fp, tc.archive)
			if !errors.Is(err, tc.want) || out != nil {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	kms := newKMS()
	plain := archive(t)
	sealed, err := Seal(ctx, kms, keyCRN, bind, fp, plain)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ParseHeader(sealed)
	n := len(sealed) - int(h.Size) - 16 // start of the ciphertext
	flip := func(i int) []byte { b := bytes.Clone(sealed); b[i] ^= 1; return b }
	reheader := func(edit func(*rawHeader)) []byte {
		var rh rawHeader
		start := len(magic) + 1 + 4
		if err := json.Unmarshal(sealed[start:n], &rh); err != nil {
			t.Fatal(err)
		}
		edit(&rh)
		hb, _ := json.Marshal(rh)
		out := append([]byte(magic), formatVersion)
		out = binary.BigEndian.AppendUint32(out, uint32(len(hb)))
		out = append(out, hb...)
		return append(out, sealed[n:]...)
	}
	down := errors.New("key protect down")
	tests := []struct {
		name   string
		u      Unwrapper
		sealed []byte
		b      Binding
		want   error
		// unwrapped says whether Key Protect was asked.
		unwrapped bool
	}{
		{"no key protect", nil, sealed, bind, ErrNoKeyProtect, false},
		{"key protect down", &fakeKMS{keys: kms.keys, fail: down}, sealed, bind, down, true},
		{"other image", kms, sealed, Binding{Database: "sales", Timestamp: "20261125020000"}, ErrBinding, false},
		{"other database", kms, sealed, Binding{Database: "hr", Timestamp: bind.Timestamp}, ErrBinding, false},
		{"ciphertext changed", kms, flip(len(sealed) - 20), bind, ErrDecrypt, true},
		{"tag changed", kms, flip(len(sealed) - 1), bind, ErrDecrypt, true},
		{"header key version changed", kms, reheader(func(r *rawHeader) { r.KeyVersion = "v9" }), bind, ErrDecrypt, true},
		{"header binding changed", kms, reheader(func(r *rawHeader) { r.AAD[2] = "20261125020000" }), Binding{Database: "sales", Timestamp: "20261125020000"}, errUnwrap, true},
		{"wrong data key", &fakeKMS{keys: kms.keys, corruptUnwrapped: true}, sealed, bind, ErrDecrypt, true},
		{"truncated", kms, sealed[:len(sealed)-1], bind, ErrFormat, false},
		{"a plain tar", kms, plain, bind, ErrFormat, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var u Unwrapper
			calls := 0
			if tc.u != nil {
				u = tc.u
				if f, ok := tc.u.(*fakeKMS); ok {
					calls = f.unwraps
					defer func() {
						if asked := f.unwraps > calls; asked != tc.unwrapped {
							t.Errorf("Key Protect asked: %v, want %v", asked, tc.unwrapped)
						}
					}()
				}
			}
			got, _, err := Open(ctx, u, tc.sealed, tc.b)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// errUnwrap is what fakeKMS says when the AAD does not match.
var errUnwrap = errors.New("unwrap refused")

func TestParseHeaderRejects(t *testing.T) {
	good, err := Seal(context.Background(), newKMS(), keyCRN, bind, fp, []byte("archive"))
	if err != nil {
		t.Fatal(err)
	}
	withHeader := func(h string, tail int) []byte {
		out := append([]byte(magic), formatVersion)
		out = binary.BigEndian.AppendUint32(out, uint32(len(h)))
		out = append(out, h...)
		return append(out, make([]byte, tail)...)
	}
	valid := `{"cipher":"AES-256-GCM","key_crn":"` + keyCRN + `","key_version":"v1","wrapped_key":"d3JhcHBlZA==","nonce":"AAAAAAAAAAAAAAAA","aad":["keyguard keystore v1","sales","20261124020000"],"fingerprint":"` + fp + `","size":1}`
	if _, err := ParseHeader(withHeader(valid, 17)); err != nil {
		t.Fatalf("hand-made valid header: %v", err)
	}
	tests := map[string][]byte{
		"empty":           nil,
		"magic only":      []byte(magic),
		"other magic":     append([]byte("KGKX"), good[4:]...),
		"newer format":    append(append([]byte(magic), formatVersion+1), good[5:]...),
		"header too long": binary.BigEndian.AppendUint32(append([]byte(magic), formatVersion), MaxHeader+1),
		"header past end": binary.BigEndian.AppendUint32(append([]byte(magic), formatVersion), 100),
		"not json":        withHeader("{nope", 17),
		"unknown field":   withHeader(strings.Replace(valid, `"size":1`, `"size":1,"x":2`, 1), 17),
		"two values":      withHeader(valid+"{}", 17),
		"other cipher":    withHeader(strings.Replace(valid, "AES-256-GCM", "AES-128-CBC", 1), 17),
		"short nonce":     withHeader(strings.Replace(valid, "AAAAAAAAAAAAAAAA", "AAAA", 1), 17),
		"no wrapped key":  withHeader(strings.Replace(valid, "d3JhcHBlZA==", "", 1), 17),
		"bad fingerprint": withHeader(strings.Replace(valid, fp, "zz", 1), 17),
		"bad label":       withHeader(strings.Replace(valid, "keyguard keystore v1", "other", 1), 17),
		"bad timestamp":   withHeader(strings.Replace(valid, "20261124020000", "2026", 1), 17),
		"size mismatch":   withHeader(valid, 18),
		"negative size":   withHeader(strings.Replace(valid, `"size":1`, `"size":-1`, 1), 15),
		"control chars":   withHeader(strings.Replace(valid, `"v1"`, `"v\u0001"`, 1), 17),
		"too large":       append(bytes.Clone(good), make([]byte, MaxSealed)...),
	}
	for name, b := range tests {
		if _, err := ParseHeader(b); !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}
