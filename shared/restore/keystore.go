package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/shared/keystore"
)

// Keys is what the restore asks Key Protect. *keyprotect.Client implements it; every method is
// safe concurrently and to retry.
type Keys interface {
	// Key returns the key's state and newest version. A destroyed key is State destroyed, not
	// an error; a key Key Protect does not know is an error for which keyprotect.IsNotFound is
	// true.
	Key(ctx context.Context, keyRef string) (keyprotect.KeyInfo, error)
	// Versions returns every version of the key, newest first.
	Versions(ctx context.Context, keyRef string) ([]keyprotect.Version, error)
	// Unwrap unwraps the data key of a sealed keystore copy (see keystore.Unwrapper).
	keystore.Unwrapper
}

var _ Keys = (*keyprotect.Client)(nil)

// keystore downloads the keystore copy of image e (checked against the catalog's size and
// SHA-256), checks that the key version it was sealed under is usable (ErrKeyUnavailable; keys
// holds what Key Protect said of the keys already asked, and gains the wrapping key), opens it
// (Key Protect unwraps its data key) and unpacks its regular files into dir/keystore. A copy
// stored in clear, before copies were sealed, is unpacked as it is, with a note. Neither the
// sealed nor the clear archive is written to disk.
func (r *Restorer) keystore(ctx context.Context, dir string, e catalog.Entry, keys map[string]keyStatus) (out, note string, err error) {
	sealed, err := downloadBytes(ctx, r.Download, *e.Keystore, keystore.MaxSealed)
	if err != nil {
		return "", "", err
	}
	archive := sealed
	if keystore.IsSealed(sealed) {
		h, err := keystore.ParseHeader(sealed)
		if err != nil {
			return "", "", err
		}
		if r.Keys != nil {
			s, ok := keys[h.KeyCRN]
			if !ok {
				got, err := observeKeys(ctx, r.Keys, []string{h.KeyCRN})
				if err != nil {
					return "", "", fmt.Errorf("check the keystore's wrapping key: %w", err)
				}
				s = got[h.KeyCRN]
			}
			if why := s.Unusable(h.KeyVersion); why != "" {
				return "", "", fmt.Errorf("%w: the keystore copy of image %s is sealed under key version %s of %s, which is unusable: %s",
					ErrKeyUnavailable, e.Name(), h.KeyVersion, h.KeyCRN, why)
			}
		}
		var keys keystore.Unwrapper
		if r.Keys != nil {
			keys = r.Keys
		}
		archive, _, err = keystore.Open(ctx, keys, sealed, keystore.Binding{Database: e.Database, Timestamp: e.ImageTimestamp})
		if err != nil {
			return "", "", err
		}
		defer clear(archive)
	} else {
		note = fmt.Sprintf("the keystore copy of image %s was stored in clear (before keystore copies were sealed): take a new backup and retire it", e.Name())
	}
	out = filepath.Join(dir, KeystoreDir)
	if err := os.MkdirAll(out, 0o700); err != nil {
		return "", "", err
	}
	if err := untar(bytes.NewReader(archive), out); err != nil {
		return "", "", err
	}
	return out, note, nil
}

// downloadBytes reads obj into memory, refusing more than limit bytes, and checks its size and
// SHA-256 against the catalog (ErrChecksum).
func downloadBytes(ctx context.Context, src Downloader, obj catalog.Object, limit int64) ([]byte, error) {
	if obj.SHA256 == "" {
		return nil, fmt.Errorf("download %s: %w: the catalog records no SHA-256", obj.Key, ErrChecksum)
	}
	if obj.Size > limit {
		return nil, fmt.Errorf("download %s: %d bytes, more than %d", obj.Key, obj.Size, limit)
	}
	var buf bytes.Buffer
	if _, err := src.Download(ctx, obj.Key, &capped{w: &buf, n: limit}); err != nil {
		return nil, fmt.Errorf("download %s: %w", obj.Key, err)
	}
	b := buf.Bytes()
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != obj.SHA256 || (obj.Size > 0 && int64(len(b)) != obj.Size) {
		return nil, fmt.Errorf("download %s: %w: read %d bytes with sha256 %s, the catalog has %d bytes with sha256 %s",
			obj.Key, ErrChecksum, len(b), got, obj.Size, obj.SHA256)
	}
	return b, nil
}

// capped refuses to take more than n bytes in all.
type capped struct {
	w io.Writer
	n int64
}

func (c *capped) Write(p []byte) (int, error) {
	if int64(len(p)) > c.n {
		return 0, fmt.Errorf("%w: the object is larger than the catalog says", ErrChecksum)
	}
	c.n -= int64(len(p))
	return c.w.Write(p)
}

// keyClass classifies a failure to reach or use Key Protect keys: Key Protect unavailable is
// transient; a sealed keystore without a Key Protect client, a key that refuses (suspended,
// destroyed, other AAD), a copy bound to another image or that does not decrypt is permanent.
func keyClass(err error) (events.FailureClass, bool) {
	var ke *keyprotect.Error
	switch {
	case errors.As(err, &ke):
		if ke.Class == keyprotect.Transient {
			return events.Transient, true
		}
		return events.Permanent, true
	case errors.Is(err, ErrKeyUnavailable), errors.Is(err, keystore.ErrNoKeyProtect), errors.Is(err, keystore.ErrBinding), errors.Is(err, keystore.ErrDecrypt),
		errors.Is(err, keystore.ErrFormat), errors.Is(err, keystore.ErrTooLarge):
		return events.Permanent, true
	}
	return "", false
}

// maxKeystoreFile bounds one file of a keystore archive (a PKCS#12 file is kilobytes).
const maxKeystoreFile = 16 << 20

// untar writes the regular files of the archive r into dir under their base names, mode 0600.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read keystore archive: %w", err)
		}
		name := filepath.Base(filepath.Clean("/" + h.Name))
		if h.Typeflag != tar.TypeReg || name == "/" || name == "." {
			continue
		}
		if h.Size > maxKeystoreFile {
			return fmt.Errorf("keystore archive: %s is %d bytes, more than a keystore", name, h.Size)
		}
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, io.LimitReader(tr, maxKeystoreFile))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("unpack keystore file %s: %w", name, err)
		}
	}
}
