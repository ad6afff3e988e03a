// Package testkit holds small fakes shared by the handler unit tests: a recording sender with
// failure injection and a fleet built from YAML. Integration tests use the real emulators instead.
package testkit
