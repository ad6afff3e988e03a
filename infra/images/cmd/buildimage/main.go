// Command buildimage builds the container image of every keyguard function that has a main
// (functions/<name>/main.go) without Docker or a registry, and writes them as one OCI image
// layout (<out>/oci) and one docker tarball per function (<out>/keyguard-<name>.tar).
//
//	go run ./infra/images/cmd/buildimage -out bin/images [-version dev] [-arch amd64] [-only scheduler,rotation]
//
// Functions without a main are skipped and named; -only must name functions that exist.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/keyguard-dev/keyguard/infra/images"
	"github.com/keyguard-dev/keyguard/shared/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "buildimage:", err)
		os.Exit(1)
	}
}

func run() error {
	root := flag.String("root", ".", "repository root (holds go.mod and functions/)")
	out := flag.String("out", "bin/images", "output directory")
	version := flag.String("version", "dev", "image tag")
	arch := flag.String("arch", "amd64", "GOARCH of the images (Code Engine runs amd64)")
	ca := flag.String("ca", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle of CA certificates to put in the images")
	only := flag.String("only", "", "comma-separated functions to build (default: every function with a main)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	available, err := images.Functions(*root)
	if err != nil {
		return err
	}
	fns := available
	if *only != "" {
		fns = strings.Split(*only, ",")
		for _, fn := range fns {
			if !contains(available, fn) {
				return fmt.Errorf("function %s has no functions/%s/main.go", fn, fn)
			}
		}
	}
	for _, fn := range append(append([]string{}, config.Apps...), config.Jobs...) {
		if !contains(available, fn) {
			fmt.Printf("skip %s: no functions/%s/main.go yet\n", fn, fn)
		}
	}
	if len(fns) == 0 {
		fmt.Println("no function has a main yet: nothing to build")
		return nil
	}
	bundle, err := os.ReadFile(*ca)
	if err != nil {
		return fmt.Errorf("CA bundle: %w (set -ca)", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "buildimage")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	oci := map[string]v1.Image{}
	for _, fn := range fns {
		bin := filepath.Join(tmp, fn)
		if err := images.BuildBinary(ctx, *root, "./functions/"+fn, *arch, bin); err != nil {
			return err
		}
		binary, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		img, err := images.Image(images.Spec{Function: fn, Binary: binary, CA: bundle, Arch: *arch})
		if err != nil {
			return err
		}
		tag, err := images.Tag(fn, *version)
		if err != nil {
			return err
		}
		path := filepath.Join(*out, "keyguard-"+fn+".tar")
		if err := images.WriteDocker(path, tag, img); err != nil {
			return err
		}
		digest, err := img.Digest()
		if err != nil {
			return err
		}
		oci[tag.String()] = img
		fmt.Printf("%s %s %s\n", tag.String(), digest, path)
	}
	if err := images.WriteOCI(filepath.Join(*out, "oci"), oci); err != nil {
		return err
	}
	fmt.Printf("OCI layout: %s\n", filepath.Join(*out, "oci"))
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
