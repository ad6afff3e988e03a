// Package secret holds credentials in a type that never prints its value: not through fmt, not
// through log/slog, not through encoding/json. Compare checks a presented secret in constant time.
package secret
