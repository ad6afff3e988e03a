// Package images builds the container image of each keyguard function without Docker or a
// registry: a static Go binary (CGO_ENABLED=0) on an empty base, with the CA bundle the IBM
// Cloud SDKs need, a writable /tmp, user 65532 and an exec-form entrypoint, written as an OCI
// image layout and as docker tarballs (docker load, skopeo, crane push). The result matches
// infra/images/Dockerfile, which builders with Docker can use instead; a test holds the two
// together.
//
// cmd/buildimage is the command line; it builds an image for every functions/<name>/main.go
// that exists and skips the functions that have no main yet.
package images
