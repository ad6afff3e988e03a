package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/upload"
)

// ErrChecksum means a downloaded object is not the one the catalog recorded (other size or
// SHA-256): the stored copy is damaged or was replaced. Downloading again does not help.
var ErrChecksum = errors.New("object does not match the catalog")

// Downloader streams stored objects. *upload.Uploader implements it.
type Downloader interface {
	// Download writes the object at key to w, and returns what it read; a missing key wraps
	// objstore.ErrNotFound. It does not compare the bytes with anything. Safe concurrently.
	Download(ctx context.Context, key string, w io.Writer) (upload.Object, error)
}

var _ Downloader = (*upload.Uploader)(nil)

// DownloadFile streams obj from src into a new file at path (replacing an older one), hashing
// the bytes as they are written, and checks the size and SHA-256 against obj. On any failure,
// the checksum included (ErrChecksum), the file is removed. Memory use is constant.
func DownloadFile(ctx context.Context, src Downloader, obj catalog.Object, path string) (err error) {
	if obj.SHA256 == "" {
		return fmt.Errorf("download %s: %w: the catalog records no SHA-256", obj.Key, ErrChecksum)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("download %s: %w", obj.Key, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("download %s: %w", obj.Key, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	h := sha256.New()
	n := &counter{}
	if _, err := src.Download(ctx, obj.Key, io.MultiWriter(f, h, n)); err != nil {
		return fmt.Errorf("download %s: %w", obj.Key, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if sum != obj.SHA256 || (obj.Size > 0 && n.n != obj.Size) {
		return fmt.Errorf("download %s: %w: read %d bytes with sha256 %s, the catalog has %d bytes with sha256 %s",
			obj.Key, ErrChecksum, n.n, sum, obj.Size, obj.SHA256)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("download %s: %w", obj.Key, err)
	}
	return nil
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
