package clp

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
)

// Image layout sizes.
const (
	headerBytes   = 4096
	trailerBytes  = 64
	MinImageBytes = headerBytes + trailerBytes
	// BufferBytes is the backup buffer size db2ckbkp counts in (one '#' per buffer).
	BufferBytes = 4 << 20
)

var (
	headerMagic  = []byte("KEYGUARD FAKEDB2 BACKUP IMAGE 1\n")
	trailerMagic = []byte("FAKEDB2E")
	// ErrCorrupt is returned by VerifyImage for an image whose content does not match its trailer.
	ErrCorrupt = errors.New("checksum mismatch in image data")
	// ErrNotImage is returned by VerifyImage for a file that is not a fake image.
	ErrNotImage = errors.New("image media header is not valid")
)

// ImageMeta is the JSON in an image's header.
type ImageMeta struct {
	Database    string   `json:"database"`
	Instance    string   `json:"instance"`
	Timestamp   string   `json:"timestamp"`
	Type        string   `json:"type"`
	Mode        string   `json:"mode"`
	Tablespaces []string `json:"tablespaces,omitempty"`
	IncludeLogs bool     `json:"include_logs"`
	Compress    bool     `json:"compress"`
	Encrypted   bool     `json:"encrypted"`
}

// seed derives the body's ChaCha8 key from what identifies the image.
func (m ImageMeta) seed() [32]byte {
	return sha256.Sum256([]byte("fakedb2|" + m.Database + "|" + m.Timestamp + "|" + m.Type))
}

// WriteImage streams an image of exactly size bytes (at least MinImageBytes) to path and
// returns the SHA-256 of the whole file. corrupt flips one body byte after the checksum is
// taken, so the trailer no longer matches. limit > 0 stops after limit bytes with an error, as a
// full disk would.
func WriteImage(path string, m ImageMeta, size int64, corrupt bool, limit int64) (sum string, err error) {
	size = max(size, MinImageBytes)
	header := make([]byte, headerBytes)
	copy(header, headerMagic)
	meta, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	if len(headerMagic)+len(meta)+1 > headerBytes {
		return "", fmt.Errorf("image metadata is %d bytes, too large for the header", len(meta))
	}
	copy(header[len(headerMagic):], append(meta, '\n'))

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	var dst io.Writer = f
	if limit > 0 {
		dst = &limitWriter{w: f, left: limit}
	}
	file := sha256.New()
	buf := bufio.NewWriterSize(io.MultiWriter(dst, file), 256<<10)
	if _, err := buf.Write(header); err != nil {
		return "", err
	}
	bodyLen := size - headerBytes - trailerBytes
	body := sha256.New()
	var out io.Writer = buf
	if corrupt {
		out = &flipWriter{w: buf, at: bodyLen / 2}
	}
	if _, err := io.CopyN(io.MultiWriter(body, out), rand.NewChaCha8(m.seed()), bodyLen); err != nil {
		return "", err
	}
	trailer := make([]byte, trailerBytes)
	copy(trailer, trailerMagic)
	copy(trailer[8:40], body.Sum(nil))
	binary.BigEndian.PutUint64(trailer[40:48], uint64(bodyLen))
	if _, err := buf.Write(trailer); err != nil {
		return "", err
	}
	if err := buf.Flush(); err != nil {
		return "", err
	}
	return hex.EncodeToString(file.Sum(nil)), nil
}

// Verified is what VerifyImage learned.
type Verified struct {
	Meta    ImageMeta
	Size    int64
	Buffers int
}

// VerifyImage reads the image at path and checks its header, size and body checksum. It returns
// ErrNotImage or ErrCorrupt (wrapped) for a bad image, another error when the file cannot be read.
func VerifyImage(path string) (Verified, error) {
	f, err := os.Open(path)
	if err != nil {
		return Verified{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Verified{}, err
	}
	v := Verified{Size: st.Size(), Buffers: int(max(1, (st.Size()+BufferBytes-1)/BufferBytes))}
	if v.Size < MinImageBytes {
		return v, fmt.Errorf("%w: file is %d bytes", ErrNotImage, v.Size)
	}
	r := bufio.NewReaderSize(f, 256<<10)
	header := make([]byte, headerBytes)
	if _, err := io.ReadFull(r, header); err != nil {
		return v, err
	}
	if !bytes.HasPrefix(header, headerMagic) {
		return v, ErrNotImage
	}
	meta := header[len(headerMagic):]
	if i := bytes.IndexByte(meta, '\n'); i >= 0 {
		meta = meta[:i]
	}
	if err := json.Unmarshal(meta, &v.Meta); err != nil {
		return v, fmt.Errorf("%w: %v", ErrNotImage, err)
	}
	bodyLen := v.Size - headerBytes - trailerBytes
	body := sha256.New()
	if _, err := io.CopyN(body, r, bodyLen); err != nil {
		return v, err
	}
	trailer := make([]byte, trailerBytes)
	if _, err := io.ReadFull(r, trailer); err != nil {
		return v, err
	}
	switch {
	case !bytes.Equal(trailer[:8], trailerMagic):
		return v, fmt.Errorf("%w: no trailer", ErrCorrupt)
	case binary.BigEndian.Uint64(trailer[40:48]) != uint64(bodyLen):
		return v, fmt.Errorf("%w: image is truncated or extended", ErrCorrupt)
	case !bytes.Equal(trailer[8:40], body.Sum(nil)):
		return v, ErrCorrupt
	}
	return v, nil
}

// flipWriter inverts the byte at offset at of the stream it passes on.
type flipWriter struct {
	w   io.Writer
	at  int64
	off int64
}

func (f *flipWriter) Write(p []byte) (int, error) {
	if f.at >= f.off && f.at < f.off+int64(len(p)) {
		q := append([]byte(nil), p...)
		q[f.at-f.off] ^= 0xFF
		p = q
	}
	n, err := f.w.Write(p)
	f.off += int64(n)
	return n, err
}

// errDiskFull is what limitWriter returns past its limit.
var errDiskFull = errors.New("no space left on device")

type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= l.left {
		n, err := l.w.Write(p)
		l.left -= int64(n)
		return n, err
	}
	n, err := l.w.Write(p[:l.left])
	l.left -= int64(n)
	if err == nil {
		err = errDiskFull
	}
	return n, err
}
