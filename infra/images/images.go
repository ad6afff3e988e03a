package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What every image holds, and how it runs. The Dockerfile says the same; a test compares them.
const (
	Entrypoint = "/function"
	User       = "65532:65532"
	CAPath     = "/etc/ssl/certs/ca-certificates.crt"
)

// epoch is the modification time of every file and the creation time of every image, so that
// the same binary always gives the same digest.
var epoch = time.Unix(0, 0).UTC()

// Functions returns the names of root/functions/<name> directories that hold a main.go, sorted.
// A missing functions directory means no function yet, not an error.
func Functions(root string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, "functions", e.Name(), "main.go")); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// BuildBinary compiles the Go main package pkg (a path like ./functions/scheduler, relative to
// root) into a static Linux binary for goarch at out. The go command comes from PATH.
func BuildBinary(ctx context.Context, root, pkg, goarch, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "timetzdata",
		"-ldflags", "-s -w -buildid=", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
	}
	return nil
}

// Spec says what goes into an image.
type Spec struct {
	Function string // name, used in the title label
	Binary   []byte // static Linux executable
	CA       []byte // PEM bundle of trusted CA certificates
	Arch     string // GOARCH, e.g. amd64
}

// Image assembles the image of one function: a single layer with /function, the CA bundle and
// /tmp on an empty base, OCI media types, user 65532, exec-form entrypoint.
func Image(s Spec) (v1.Image, error) {
	if len(s.Binary) == 0 {
		return nil, fmt.Errorf("image %s: empty binary", s.Function)
	}
	if len(s.CA) == 0 {
		return nil, fmt.Errorf("image %s: empty CA bundle", s.Function)
	}
	layerTar, err := rootfs(s)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Function, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image %s: layer: %w", s.Function, err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Function, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Function, err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", s.Arch
	cf.Created = v1.Time{Time: epoch}
	cf.Config = v1.Config{
		Entrypoint: []string{Entrypoint},
		User:       User,
		WorkingDir: "/",
		Env:        []string{"SSL_CERT_FILE=" + CAPath},
		Labels: map[string]string{
			"org.opencontainers.image.title":  "keyguard-" + s.Function,
			"org.opencontainers.image.source": "github.com/keyguard-dev/keyguard",
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Function, err)
	}
	return img, nil
}

// rootfs is the layer's tar: directories, the CA bundle, /tmp (sticky, world-writable) and the
// binary, owned by root, readable by the runtime user.
func rootfs(s Spec) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		name string
		mode int64
		body []byte
		dir  bool
	}{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: s.CA},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "function", mode: 0o755, body: s.Binary},
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: epoch, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Tag is the reference an image of fn is written under, e.g. keyguard-scheduler:dev.
func Tag(fn, version string) (name.Tag, error) {
	return name.NewTag("keyguard-" + fn + ":" + version)
}

// WriteOCI writes the images, by tag, into one OCI image layout at dir (created or replaced).
func WriteOCI(dir string, imgs map[string]v1.Image) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("write OCI layout: %w", err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write OCI layout: %w", err)
	}
	tags := make([]string, 0, len(imgs))
	for t := range imgs {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	for _, t := range tags {
		err := p.AppendImage(imgs[t], layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": t}))
		if err != nil {
			return fmt.Errorf("write OCI layout %s: %w", t, err)
		}
	}
	return nil
}

// WriteDocker writes one image as a docker tarball (docker load, crane push) at path.
func WriteDocker(path string, tag name.Tag, img v1.Image) error {
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		return fmt.Errorf("write docker tarball %s: %w", path, err)
	}
	return nil
}
