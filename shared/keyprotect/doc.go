// Package keyprotect reads and rotates IBM Key Protect root keys for keyguard. It wraps
// keyprotect-go-client v0.17.3 behind a Client whose methods return this package's plain types,
// for the code that watches keys for rotation (scheduler tick, rotation window) and the code that
// rotates keys on purpose. Consumers define the narrow interface they need, e.g.
//
//	type keyWatcher interface {
//		Key(ctx context.Context, keyRef string) (keyprotect.KeyInfo, error)
//		Registrations(ctx context.Context, keyRef string) ([]keyprotect.Registration, error)
//	}
//
// Key Protect is not an Event Notifications source, so rotation is learned by polling: Key
// (GetKeyMetadata: state, lastRotateDate, the newest keyVersion), Versions (ListKeyVersions,
// newest first), Registrations (ListRegistrations: the key version each registered resource,
// e.g. a Db2 instance, uses now; a resource whose version is the key's newest has re-wrapped) and
// RotationPolicy. Rotate, Disable and Enable act on a key. Wrap and Unwrap are envelope
// encryption (the backup runner wraps the data key of a keystore copy, the restore job unwraps
// it): data keys pass through them and are never logged. A key is named by its id or its CRN
// (KeyIDFromCRN); a CRN must name the client's instance. Key states map to events.KeyState
// (StateFromCode).
//
// Time budget: every method is bounded by Options.Timeout (4 s by default), retries included,
// so a handler can call Key Protect and still answer Event Notifications within its 10 s. Each
// HTTP attempt is bounded by Options.AttemptTimeout (2 s). Transient failures (HTTP 408, 429, 5xx
// except 501, network errors, timeouts, and the same from IAM's token endpoint) are retried up to
// Options.Retries times with a doubling wait (100 ms, capped at 1 s, each shortened at random by
// up to half; a longer Retry-After from Key Protect replaces it) while the budget allows
// (shared/retry); the last error is returned when it does not. The SDK's own retry loop (kp.RetryMax: 4 retries with
// waits up to 30 s) is switched off process-wide by New (kp.RetryMax = 0), because it cannot be
// bounded per call; this package is the only user of the SDK in keyguard.
//
// Authentication: the SDK's own API-key token source (package iam, with its global iam.RetryMax
// and iam.RetryWaitMax) is never used: it takes no context, waits up to 60 s per request and
// retries up to 4 times with waits up to 30 s. Instead every call carries a token obtained from a
// go-sdk-core Authenticator (kp.NewContextWithAuth): an IamAuthenticator built from APIKey and
// TokenURL, or Options.Authenticator (e.g. a ContainerAuthenticator for a Code Engine trusted
// profile). The token fetch runs under the same budget: the caller stops waiting when the budget
// ends. Tokens and API keys are never logged.
//
// Errors: every failure is an *Error carrying the operation, the key id, the HTTP status, Key
// Protect's reason code and a Class; its Kind method says the class in keyguard's vocabulary
// (shared/errkind), so errkind.Of, shared/retry and the edge understand it. IsTransient says trying
// again later may succeed; IsNotFound that the key does not exist (404) or is gone (410);
// IsRotationTooSoon that Key Protect refused a rotation because the key was rotated less than an
// hour ago (409 KEY_ROTATION_NOT_PERMITTED). Refused credentials (IAM refusing the API key or
// profile, 401, 403) and a key CRN of another instance are class Configuration; a malformed key
// reference or data key, refused before anything is sent, is Invalid. Everything else (other 4xx,
// malformed answers) is Permanent. Only Transient errors are retried.
//
// A Client is safe for concurrent use.
package keyprotect
