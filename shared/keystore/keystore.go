package keystore

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Wrapper wraps data keys with a Key Protect root key. *keyprotect.Client implements it.
type Wrapper interface {
	// Wrap wraps key with the root key keyRef, binding aad, and returns the wrapped key (opaque
	// text) and the id of the key version that wrapped it. Safe to retry and concurrently.
	Wrap(ctx context.Context, keyRef string, key []byte, aad []string) (wrapped []byte, version string, err error)
}

// Unwrapper unwraps data keys. *keyprotect.Client implements it.
type Unwrapper interface {
	// Unwrap returns the data key Wrap wrapped with keyRef and aad, or an error (the key is not
	// active, the wrapped key or aad differ, Key Protect is unreachable). Safe to retry and
	// concurrently.
	Unwrap(ctx context.Context, keyRef string, wrapped []byte, aad []string) ([]byte, error)
}

// Limits of the stored format.
const (
	// MaxArchive bounds the archive of a keystore and its stash (a PKCS#12 keystore is a few KiB,
	// and grows by a little with each master key it keeps).
	MaxArchive = 8 << 20
	// MaxHeader bounds the JSON header.
	MaxHeader = 16 << 10
	// MaxSealed bounds a whole sealed keystore.
	MaxSealed = prefixLen + MaxHeader + MaxArchive + tagSize
)

// CipherAES256GCM is the only cipher of format version 1.
const CipherAES256GCM = "AES-256-GCM"

const (
	magic         = "KGKS"
	formatVersion = 1
	prefixLen     = 4 + 1 + 4 // magic, format version, header length
	nonceSize     = 12
	tagSize       = 16
	dataKeySize   = 32
	// aadLabel is the first element of the AAD given to Key Protect.
	aadLabel  = "keyguard keystore v1"
	maxText   = 512
	maxWrappd = 12 << 10
)

// Errors. Test with errors.Is; errors from the Wrapper or Unwrapper are wrapped as they come.
var (
	// ErrFormat: the bytes are not a sealed keystore of a known format, or the arguments of Seal
	// are not what one can hold.
	ErrFormat = errors.New("not a sealed keystore")
	// ErrTooLarge: the archive or the sealed object is over its limit.
	ErrTooLarge = errors.New("keystore archive too large")
	// ErrBinding: the sealed keystore was made for another database or image.
	ErrBinding = errors.New("sealed keystore belongs to another image")
	// ErrDecrypt: Key Protect unwrapped a data key, but the archive does not open with it: the
	// object was changed or damaged.
	ErrDecrypt = errors.New("sealed keystore does not decrypt")
	// ErrNoKeyProtect: sealing or opening needs Key Protect and none was given.
	ErrNoKeyProtect = errors.New("no Key Protect client to wrap or unwrap the keystore's data key")
)

// Binding names the image a keystore copy belongs to. It is bound to the wrapped data key.
type Binding struct {
	Database  string
	Timestamp string // the image timestamp, 14 digits
}

func (b Binding) aad() []string { return []string{aadLabel, b.Database, b.Timestamp} }

func (b Binding) valid() bool {
	return text(b.Database, 128) && len(b.Timestamp) == 14 && digits(b.Timestamp)
}

// Header is what a sealed keystore says about itself, in clear.
type Header struct {
	Cipher string
	// KeyCRN is the root key that wrapped the data key; KeyVersion the key version Key Protect
	// reported for the wrap (it must stay available for the copy to open).
	KeyCRN     string
	KeyVersion string
	// Database and Timestamp are the image the copy belongs to (the binding).
	Database  string
	Timestamp string
	// Fingerprint is the SHA-256 (hex) of the keystore file.
	Fingerprint string
	// Size is the archive's length.
	Size int64

	wrapped []byte
	nonce   []byte
}

// rawHeader is the stored JSON.
type rawHeader struct {
	Cipher      string   `json:"cipher"`
	KeyCRN      string   `json:"key_crn"`
	KeyVersion  string   `json:"key_version"`
	WrappedKey  string   `json:"wrapped_key"`
	Nonce       []byte   `json:"nonce"`
	AAD         []string `json:"aad"`
	Fingerprint string   `json:"fingerprint"`
	Size        int64    `json:"size"`
}

func (h Header) raw() rawHeader {
	return rawHeader{Cipher: h.Cipher, KeyCRN: h.KeyCRN, KeyVersion: h.KeyVersion, WrappedKey: string(h.wrapped), Nonce: h.nonce,
		AAD: Binding{h.Database, h.Timestamp}.aad(), Fingerprint: h.Fingerprint, Size: h.Size}
}

// validate checks every field; the error wraps ErrFormat.
func (h Header) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: header: %s", ErrFormat, fmt.Sprintf(format, args...))
	}
	switch {
	case h.Cipher != CipherAES256GCM:
		return bad("cipher %q, want %s", h.Cipher, CipherAES256GCM)
	case !text(h.KeyCRN, maxText):
		return bad("key_crn must be 1-%d printable characters", maxText)
	case !text(h.KeyVersion, maxText):
		return bad("key_version must be 1-%d printable characters", maxText)
	case !text(string(h.wrapped), maxWrappd):
		return bad("wrapped_key must be 1-%d printable characters", maxWrappd)
	case len(h.nonce) != nonceSize:
		return bad("nonce has %d bytes, want %d", len(h.nonce), nonceSize)
	case !(Binding{h.Database, h.Timestamp}).valid():
		return bad("aad does not name a database and an image timestamp")
	case len(h.Fingerprint) != 64 || !hex(h.Fingerprint):
		return bad("fingerprint must be 64 lowercase hex digits")
	case h.Size < 0 || h.Size > MaxArchive:
		return bad("size %d is not 0-%d", h.Size, MaxArchive)
	}
	return nil
}

// Seal encrypts archive (the tar of a keystore and its stash) for the image b with a new data
// key that keyCRN wraps through w, and returns the stored form. fingerprint is the SHA-256 (hex)
// of the keystore file. It fails, storing nothing, when w is nil (ErrNoKeyProtect), when Key
// Protect does not wrap (its error, wrapped), or when the archive is empty or over MaxArchive.
// Nothing secret is logged or kept: the data key is cleared before Seal returns.
func Seal(ctx context.Context, w Wrapper, keyCRN string, b Binding, fingerprint string, archive []byte) ([]byte, error) {
	switch {
	case len(archive) > MaxArchive:
		return nil, fmt.Errorf("seal keystore: %w: %d bytes, limit %d", ErrTooLarge, len(archive), MaxArchive)
	case len(archive) == 0:
		return nil, fmt.Errorf("seal keystore: %w: empty archive", ErrFormat)
	case w == nil:
		return nil, fmt.Errorf("seal keystore: %w", ErrNoKeyProtect)
	}
	h := Header{Cipher: CipherAES256GCM, KeyCRN: keyCRN, KeyVersion: "-", Database: b.Database, Timestamp: b.Timestamp,
		Fingerprint: fingerprint, Size: int64(len(archive)), wrapped: []byte("-"), nonce: make([]byte, nonceSize)}
	if err := h.validate(); err != nil { // the arguments, before Key Protect is asked
		return nil, fmt.Errorf("seal keystore: %w", err)
	}
	dek := make([]byte, dataKeySize)
	defer clear(dek)
	if _, err := io.ReadFull(rand.Reader, dek); err != nil {
		return nil, fmt.Errorf("seal keystore: data key: %w", err)
	}
	if _, err := io.ReadFull(rand.Reader, h.nonce); err != nil {
		return nil, fmt.Errorf("seal keystore: nonce: %w", err)
	}
	wrapped, version, err := w.Wrap(ctx, keyCRN, dek, b.aad())
	if err != nil {
		return nil, fmt.Errorf("seal keystore: wrap its data key with %s: %w", keyCRN, err)
	}
	h.wrapped, h.KeyVersion = wrapped, version
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("seal keystore: Key Protect's answer: %w", err)
	}
	hb, err := json.Marshal(h.raw())
	if err != nil {
		return nil, fmt.Errorf("seal keystore: %w", err)
	}
	if len(hb) > MaxHeader {
		return nil, fmt.Errorf("seal keystore: %w: header of %d bytes", ErrTooLarge, len(hb))
	}
	out := make([]byte, 0, prefixLen+len(hb)+len(archive)+tagSize)
	out = append(out, magic...)
	out = append(out, formatVersion)
	out = binary.BigEndian.AppendUint32(out, uint32(len(hb)))
	out = append(out, hb...)
	aead, err := gcm(dek)
	if err != nil {
		return nil, fmt.Errorf("seal keystore: %w", err)
	}
	return aead.Seal(out, h.nonce, archive, out), nil
}

// IsSealed reports whether b starts like a sealed keystore (a copy taken before sealing existed
// is a plain tar archive).
func IsSealed(b []byte) bool { return bytes.HasPrefix(b, []byte(magic)) }

// ParseHeader reads and checks the header of a sealed keystore without decrypting anything. Any
// deviation from the format (other magic or version, a header out of bounds, unknown or invalid
// fields, a ciphertext whose length disagrees with the header) is an error wrapping ErrFormat;
// input over MaxSealed wraps ErrTooLarge.
func ParseHeader(sealed []byte) (Header, error) {
	h, _, err := parse(sealed)
	return h, err
}

// parse returns the header and the length of the authenticated prefix (everything before the
// ciphertext).
func parse(b []byte) (Header, int, error) {
	bad := func(format string, args ...any) (Header, int, error) {
		return Header{}, 0, fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
	}
	switch {
	case len(b) > MaxSealed:
		return Header{}, 0, fmt.Errorf("%w: sealed keystore of %d bytes, limit %d", ErrTooLarge, len(b), MaxSealed)
	case len(b) < prefixLen || !IsSealed(b):
		return bad("no %q magic", magic)
	case b[len(magic)] != formatVersion:
		return bad("format version %d, this reader knows %d", b[len(magic)], formatVersion)
	}
	n := binary.BigEndian.Uint32(b[len(magic)+1:])
	if n == 0 || n > MaxHeader || uint64(n) > uint64(len(b)-prefixLen) {
		return bad("header length %d out of bounds", n)
	}
	end := prefixLen + int(n)
	dec := json.NewDecoder(bytes.NewReader(b[prefixLen:end]))
	dec.DisallowUnknownFields()
	var r rawHeader
	if err := dec.Decode(&r); err != nil {
		return bad("header: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("header: data after the JSON object")
	}
	if len(r.AAD) != 3 || r.AAD[0] != aadLabel {
		return bad("header: aad is not [%q, database, timestamp]", aadLabel)
	}
	h := Header{Cipher: r.Cipher, KeyCRN: r.KeyCRN, KeyVersion: r.KeyVersion, Database: r.AAD[1], Timestamp: r.AAD[2],
		Fingerprint: r.Fingerprint, Size: r.Size, wrapped: []byte(r.WrappedKey), nonce: r.Nonce}
	if err := h.validate(); err != nil {
		return Header{}, 0, err
	}
	if int64(len(b)-end) != h.Size+tagSize {
		return bad("%d bytes of ciphertext, the header says %d plus the tag", len(b)-end, h.Size)
	}
	return h, end, nil
}

// Open checks that sealed belongs to the image b (ErrBinding otherwise, before Key Protect is
// asked), asks u to unwrap its data key, and decrypts the archive. It fails with ErrNoKeyProtect
// when u is nil, with Key Protect's error (wrapped) when it does not unwrap, and with ErrDecrypt
// when the archive does not open with the unwrapped key. The archive returned is secret (it
// holds the keystore password); the data key is cleared before Open returns.
func Open(ctx context.Context, u Unwrapper, sealed []byte, b Binding) ([]byte, Header, error) {
	h, end, err := parse(sealed)
	if err != nil {
		return nil, Header{}, fmt.Errorf("open keystore: %w", err)
	}
	if h.Database != b.Database || h.Timestamp != b.Timestamp {
		return nil, Header{}, fmt.Errorf("open keystore: %w: sealed for %s/%s, wanted for %s/%s", ErrBinding, h.Database, h.Timestamp, b.Database, b.Timestamp)
	}
	if u == nil {
		return nil, Header{}, fmt.Errorf("open keystore of %s/%s: %w", b.Database, b.Timestamp, ErrNoKeyProtect)
	}
	dek, err := u.Unwrap(ctx, h.KeyCRN, h.wrapped, b.aad())
	if err != nil {
		return nil, Header{}, fmt.Errorf("open keystore of %s/%s: unwrap its data key with %s (key version %s): %w",
			b.Database, b.Timestamp, h.KeyCRN, h.KeyVersion, err)
	}
	defer clear(dek)
	aead, err := gcm(dek)
	if err != nil {
		return nil, Header{}, fmt.Errorf("open keystore of %s/%s: %w: unwrapped data key: %v", b.Database, b.Timestamp, ErrDecrypt, err)
	}
	archive, err := aead.Open(nil, h.nonce, sealed[end:], sealed[:end])
	if err != nil {
		return nil, Header{}, fmt.Errorf("open keystore of %s/%s: %w", b.Database, b.Timestamp, ErrDecrypt)
	}
	return archive, h, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	if len(key) != dataKeySize {
		return nil, fmt.Errorf("data key of %d bytes, want %d", len(key), dataKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// text: 1 to max bytes of UTF-8 without control characters.
func text(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func hex(s string) bool {
	for i := range len(s) {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
