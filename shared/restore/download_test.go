package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/upload"
)

// downloadFunc is a Downloader made of a function.
type downloadFunc func(ctx context.Context, key string, w io.Writer) (upload.Object, error)

func (f downloadFunc) Download(ctx context.Context, key string, w io.Writer) (upload.Object, error) {
	return f(ctx, key, w)
}

// serve streams body, then fails with err when err is not nil.
func serve(body []byte, err error) Downloader {
	return downloadFunc(func(_ context.Context, key string, w io.Writer) (upload.Object, error) {
		if _, werr := w.Write(body); werr != nil {
			return upload.Object{}, werr
		}
		return upload.Object{Key: key, Size: int64(len(body))}, err
	})
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestDownloadFile(t *testing.T) {
	body := bytes.Repeat([]byte("db2 image "), 100000)
	other := slices.Clone(body)
	other[500] ^= 1
	cases := []struct {
		name    string
		src     Downloader
		obj     catalog.Object
		wantErr error // nil: success
		// untouched: refused before writing, the older file stays.
		untouched bool
	}{
		{"matches", serve(body, nil), catalog.Object{Key: "k", Size: int64(len(body)), SHA256: sum(body)}, nil, false},
		{"size unknown", serve(body, nil), catalog.Object{Key: "k", SHA256: sum(body)}, nil, false},
		{"one byte differs", serve(other, nil), catalog.Object{Key: "k", Size: int64(len(body)), SHA256: sum(body)}, ErrChecksum, false},
		{"truncated", serve(body[:1000], nil), catalog.Object{Key: "k", Size: int64(len(body)), SHA256: sum(body)}, ErrChecksum, false},
		{"other size, same sum", serve(body, nil), catalog.Object{Key: "k", Size: 7, SHA256: sum(body)}, ErrChecksum, false},
		{"no checksum in catalog", serve(body, nil), catalog.Object{Key: "k", Size: int64(len(body))}, ErrChecksum, true},
		{"stream breaks", serve(body[:10], io.ErrUnexpectedEOF), catalog.Object{Key: "k", Size: int64(len(body)), SHA256: sum(body)}, io.ErrUnexpectedEOF, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "IMAGE.001")
			if err := os.WriteFile(p, []byte("an older file"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := DownloadFile(context.Background(), c.src, c.obj, p)
			got, rerr := os.ReadFile(p)
			if c.wantErr == nil {
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("err %v, %d bytes written", err, len(got))
				}
				return
			}
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
			if c.untouched {
				if string(got) != "an older file" {
					t.Fatalf("older file changed: %q %v", got, rerr)
				}
				return
			}
			if !errors.Is(rerr, os.ErrNotExist) {
				t.Fatalf("file left behind after %v (%d bytes)", err, len(got))
			}
		})
	}
}

func TestDownloadFileBadPath(t *testing.T) {
	err := DownloadFile(context.Background(), serve([]byte("x"), nil), catalog.Object{Key: "k", SHA256: sum([]byte("x"))}, filepath.Join(t.TempDir(), "no", "dir"))
	if err == nil || errors.Is(err, ErrChecksum) {
		t.Fatalf("err %v", err)
	}
}

func TestUntarKeepsRegularFilesByBaseName(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		typ  byte
		body string
	}{
		{"db2keys.p12", tar.TypeReg, "pkcs12"},
		{"../../escape.sth", tar.TypeReg, "stash"},
		{"/etc/passwd", tar.TypeSymlink, ""},
		{"sub/", tar.TypeDir, ""},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: f.typ, Size: int64(len(f.body)), Mode: 0o644, Linkname: "x"}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dir := filepath.Join(root, "a", "keystore")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := untar(&buf, dir); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"db2keys.p12", "escape.sth"}) {
		t.Fatalf("unpacked %v", names)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "escape.sth")); string(b) != "stash" {
		t.Fatalf("stash %q", b)
	}
	if st, err := os.Stat(filepath.Join(dir, "db2keys.p12")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st, err)
	}
	if err := untar(bytes.NewReader([]byte("not a tar archive at all, but long enough to be read as a header block")), dir); err == nil {
		t.Fatal("junk archive accepted")
	}
}
