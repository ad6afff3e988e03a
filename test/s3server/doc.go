// Package s3server runs a real S3-compatible server, versitygw, on loopback for integration
// tests (Start) and for the local dev stack (Launch). The binary is found through
// KEYGUARD_VERSITYGW or at <module root>/bin/versitygw, where `make test` installs it; a missing
// binary fails the test with that advice, it never skips.
package s3server
