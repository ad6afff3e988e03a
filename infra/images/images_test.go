package images

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// repoRoot is the repository root, found from this file.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

var fakeCA = []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")

func testImageSpec() Spec {
	return Spec{Function: "scheduler", Binary: []byte("\x7fELF not really"), CA: fakeCA, Arch: "amd64"}
}

func TestImageConfigAndLayer(t *testing.T) {
	img, err := Image(testImageSpec())
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := img.MediaType()
	if mt != types.OCIManifestSchema1 {
		t.Errorf("media type %s", mt)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/function"}) || len(cf.Config.Cmd) != 0 {
		t.Errorf("entrypoint %v cmd %v", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q", cf.Config.User)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
	files := map[string]*tar.Header{}
	bodies := map[string][]byte{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
		bodies[h.Name], _ = io.ReadAll(tr)
	}
	want := map[string]int64{"function": 0o755, "etc/ssl/certs/ca-certificates.crt": 0o644, "tmp": 0o1777}
	for path, mode := range want {
		h, ok := files[path]
		if !ok {
			t.Errorf("%s missing from the image (have %v)", path, keys(files))
			continue
		}
		if h.Mode != mode {
			t.Errorf("%s mode %o, want %o", path, h.Mode, mode)
		}
	}
	if !bytes.Equal(bodies["function"], testImageSpec().Binary) || !bytes.Equal(bodies["etc/ssl/certs/ca-certificates.crt"], fakeCA) {
		t.Error("the layer does not hold the binary and the CA bundle given")
	}
	for path := range files {
		if strings.Contains(path, "sh") && strings.HasPrefix(path, "bin/") {
			t.Errorf("image contains a shell: %s", path)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestImageIsReproducible(t *testing.T) {
	a, err := Image(testImageSpec())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Image(testImageSpec())
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("same inputs, digests %s and %s", da, db)
	}
	other := testImageSpec()
	other.Binary = []byte("another binary")
	c, _ := Image(other)
	if dc, _ := c.Digest(); dc == da {
		t.Error("a different binary gave the same digest")
	}
}

func TestImageRejectsEmptyInputs(t *testing.T) {
	for _, s := range []Spec{{Function: "x", CA: fakeCA}, {Function: "x", Binary: []byte("b")}} {
		if _, err := Image(s); err == nil {
			t.Errorf("Image(%+v) succeeded", s)
		}
	}
}

func TestWriteAndReadBack(t *testing.T) {
	img, err := Image(testImageSpec())
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	tag, err := Tag("scheduler", "test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	path := filepath.Join(dir, "keyguard-scheduler.tar")
	if err := WriteDocker(path, tag, img); err != nil {
		t.Fatal(err)
	}
	back, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := back.ConfigFile()
	if err != nil || cf.Config.User != User {
		t.Errorf("docker tarball config: %+v, %v", cf, err)
	}

	oci := filepath.Join(dir, "oci")
	if err := WriteOCI(oci, map[string]v1.Image{tag.String(): img}); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(oci)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("index: %+v, %v", m, err)
	}
	if m.Manifests[0].Digest != digest {
		t.Errorf("layout holds %s, want %s", m.Manifests[0].Digest, digest)
	}
	if got := m.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != tag.String() {
		t.Errorf("ref name %q, want %q", got, tag.String())
	}
}

func TestTag(t *testing.T) {
	tag, err := Tag("rotation", "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := name.NewTag(tag.String()); err != nil {
		t.Errorf("tag %q does not parse back: %v", tag, err)
	}
	if !strings.Contains(tag.String(), "keyguard-rotation:v1.2.3") {
		t.Errorf("tag %q", tag)
	}
	if _, err := Tag("Bad Name", "x"); err == nil {
		t.Error("an invalid name was accepted")
	}
}

func TestFunctions(t *testing.T) {
	root := t.TempDir()
	if fns, err := Functions(root); err != nil || len(fns) != 0 {
		t.Errorf("no functions dir: %v, %v", fns, err)
	}
	for _, d := range []string{"functions/scheduler", "functions/rotation", "functions/empty"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"functions/scheduler/main.go", "functions/rotation/main.go", "functions/README.md"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("package main\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fns, err := Functions(root)
	if err != nil || !slices.Equal(fns, []string{"rotation", "scheduler"}) {
		t.Errorf("Functions = %v, %v", fns, err)
	}
}

// TestBuildBinaryIsStatic compiles a tiny main the way images are built and checks the result
// is a static Linux executable: no program interpreter, no shared libraries.
func TestBuildBinaryIsStatic(t *testing.T) {
	out := filepath.Join(t.TempDir(), "hello")
	ctx := context.Background()
	if err := BuildBinary(ctx, repoRoot(t), "./infra/images/testdata/hello", "amd64", out); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		t.Errorf("machine %v", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a program interpreter: not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v", libs)
	}
	if err := BuildBinary(ctx, repoRoot(t), "./infra/images/testdata/missing", "amd64", out); err == nil {
		t.Error("building a missing package succeeded")
	}
}
