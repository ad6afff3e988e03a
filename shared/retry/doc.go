// Package retry is keyguard's one retry helper, for the adapters that call IBM services (Key
// Protect, Code Engine, Db2 on Cloud) and anything else that calls out over the network.
//
// Do calls a function until it succeeds or until trying again cannot help or cannot fit:
//
//   - an error whose kind is not transient (shared/errkind) ends it at once, as does an error
//     marked Final (transient, but not worth retrying within this call);
//   - Policy.Attempts bounds the number of attempts;
//   - the context's deadline is the budget: a wait that would end past it is not started, so the
//     caller gets the last error while it still has time to answer (Event Notifications gives a
//     handler 10 s; an adapter call takes a budget well below that).
//
// Waits grow exponentially from Policy.FirstWait to Policy.MaxWait. Policy.Jitter shortens each
// by a random part (many Code Engine instances meeting the same throttling must not retry in step);
// the random source can be injected so tests are deterministic. A server's Retry-After (an error
// implementing RetryAfterError) replaces the wait when it is longer. Waits run on an injected
// shared/clock Clock. Do returns f's last error unchanged, so callers still errors.As their own
// error types.
//
// Do has no state of its own and is safe for concurrent use; so is a Policy, as long as its
// OnRetry and Rand are.
package retry
