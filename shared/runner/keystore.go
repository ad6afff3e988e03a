package runner

import (
	"archive/tar"
	"bytes"
	"cmp"
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
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/shared/keystore"
)

// KeystoreObject is the file name of the sealed keystore copy beside the image it opens
// (images/<database>/<timestamp>/keystore.sealed; see package keystore for its format).
const KeystoreObject = "keystore.sealed"

// sealedKeystore is a keystore copy ready to upload.
type sealedKeystore struct {
	body        []byte // keystore.Seal's output
	fingerprint string // SHA-256 (hex) of the keystore file
}

// sealKeystore reads the database manager's keystore settings and, for a local keystore,
// archives the keystore and its stash file in memory and seals the archive for image ts with a
// data key that Key Protect wraps with the database's keystore key. nil when there is no local
// keystore. The clear archive never leaves memory and is cleared before returning.
func (r *Runner) sealKeystore(ctx context.Context, db config.Database, ts string) (*sealedKeystore, error) {
	out, _, err := r.DB2.Run(ctx, []string{"db2", "get", "dbm", "cfg"})
	if err != nil {
		return nil, err
	}
	ks, err := db2.ParseDBMKeystore(out)
	if err != nil || !ks.Local() {
		return nil, err
	}
	var buf bytes.Buffer
	sum, err := writeTar(&limitWriter{w: &buf, n: keystore.MaxArchive}, ks.Files())
	archive := buf.Bytes()
	defer clear(archive)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", ks.Location, err)
	}
	fingerprint := hex.EncodeToString(sum)
	body, err := keystore.Seal(ctx, r.Keys, cmp.Or(db.KeystoreKeyCRN, db.KeyCRN), keystore.Binding{Database: db.Name, Timestamp: ts}, fingerprint, archive)
	if err != nil {
		return nil, err
	}
	return &sealedKeystore{body: body, fingerprint: fingerprint}, nil
}

// keystoreClass classifies a failure to copy the keystore: no Key Protect client, a keystore
// over the size limit, or a key that Key Protect refuses to wrap with (suspended, destroyed, not
// found, no access) need an operator; Key Protect or COS unavailable is transient; Db2's own
// errors keep their class.
func keystoreClass(err error) events.FailureClass {
	var ke *keyprotect.Error
	switch {
	case errors.Is(err, keystore.ErrNoKeyProtect), errors.Is(err, keystore.ErrTooLarge):
		return events.Configuration
	case errors.As(err, &ke):
		if ke.Class == keyprotect.Transient {
			return events.Transient
		}
		return events.Configuration
	}
	return db2.ClassOf(err)
}

// errTooLarge is limitWriter's refusal.
var errTooLarge = fmt.Errorf("%w: more than %d bytes", keystore.ErrTooLarge, keystore.MaxArchive)

// limitWriter refuses to write more than n bytes in all.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, errTooLarge
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

// writeTar writes the files that exist into a tar archive and returns the SHA-256 of the first
// one (the keystore), which must exist; the others (the stash file) may be absent.
func writeTar(w io.Writer, files []string) ([]byte, error) {
	tw := tar.NewWriter(w)
	var sum []byte
	for i, f := range files {
		fh, err := os.Open(f)
		if errors.Is(err, os.ErrNotExist) && i > 0 {
			continue // no stash file
		}
		if err != nil {
			return nil, err
		}
		st, err := fh.Stat()
		if err == nil && st.Size() > keystore.MaxArchive {
			err = errTooLarge
		}
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: filepath.Base(f), Mode: 0o600, Size: st.Size(), ModTime: st.ModTime()})
		}
		if err == nil {
			h := sha256.New()
			_, err = io.Copy(io.MultiWriter(tw, h), fh)
			if i == 0 {
				sum = h.Sum(nil)
			}
		}
		fh.Close()
		if err != nil {
			return nil, err
		}
	}
	return sum, tw.Close()
}

// masterKeyRotated announces a native-encryption master key rotation when the keystore copied
// with this image (fingerprint) differs from the one copied with the previous image that has a
// copy: ADMIN_ROTATE_MASTER_KEY counts as a key rotation (the rotation function makes the next
// backup a full). Best effort: the next image compares again.
func (r *Runner) masterKeyRotated(ctx context.Context, db config.Database, entries []catalog.Entry, fingerprint string) {
	var prev *catalog.Object
	for i := len(entries) - 1; i >= 0 && prev == nil; i-- {
		prev = entries[i].Keystore
	}
	if prev == nil {
		return
	}
	old, err := r.fingerprintOf(ctx, *prev)
	if err != nil {
		r.log().Warn("read previous keystore copy", "database", db.Name, "key", prev.Key, "err", err)
		return
	}
	if old == fingerprint {
		return
	}
	kr := events.KeyRotated{KeyCRN: db.KeyCRN, OldVersion: old[:16], NewVersion: fingerprint[:16], RotatedAt: clock.Or(r.Clock).Now(), DetectedBy: events.DetectedByKeystore}
	if err := r.Send.Send(ctx, db.Name+"/keystore/"+kr.NewVersion, kr); err != nil {
		r.log().Warn("announce master key rotation", "database", db.Name, "err", err)
	}
}

// fingerprintOf returns the keystore fingerprint of a stored copy: from a sealed copy's header,
// or the SHA-256 of the first file of a copy stored as a plain tar (before copies were sealed).
// Nothing is decrypted.
func (r *Runner) fingerprintOf(ctx context.Context, obj catalog.Object) (string, error) {
	var buf bytes.Buffer
	if _, err := r.Upload.Download(ctx, obj.Key, &limitWriter{w: &buf, n: keystore.MaxSealed}); err != nil {
		return "", err
	}
	b := buf.Bytes()
	if keystore.IsSealed(b) {
		h, err := keystore.ParseHeader(b)
		return h.Fingerprint, err
	}
	tr := tar.NewReader(bytes.NewReader(b))
	if _, err := tr.Next(); err != nil {
		return "", fmt.Errorf("neither a sealed keystore nor a tar archive: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, tr); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
