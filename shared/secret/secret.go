package secret

import (
	"crypto/subtle"
	"log/slog"
)

// Secret is a credential. Its zero value is "not set".
type Secret struct{ v string }

// New wraps a value.
func New(v string) Secret { return Secret{v: v} }

const redacted = "[redacted]"

// Reveal returns the value, for the one place that must send it.
func (s Secret) Reveal() string { return s.v }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s.v != "" }

// String prints a placeholder.
func (s Secret) String() string { return redacted }

// GoString prints a placeholder for %#v.
func (s Secret) GoString() string { return redacted }

// LogValue keeps the value out of structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText keeps the value out of JSON and YAML.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Equal reports, in time independent of where they differ, whether presented equals the secret.
// An unset secret equals nothing.
func (s Secret) Equal(presented string) bool {
	if s.v == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(s.v), []byte(presented)) == 1
}
