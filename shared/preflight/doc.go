// Package preflight proves a keyguard deployment's wiring and permissions end to end, on demand
// and in seconds: credentials, the bucket, the root keys and their registrations, the
// service-to-service authorizations, Event Notifications' source, topics, subscriptions and the
// delivery of every route, the executors, and the fleet policy. Each check reports OK, FAIL
// (with the reason and the fix) or SKIP (with why it was not run).
//
// The checks run over small interfaces this package owns (Credentials, Objects, Bucket, Keys,
// Authorizations, Publisher, Topology, Jobs, Db2); the adapters of the IBM SDKs implement them
// and shared/runtime wires them from a function's configuration. A Deployment whose field is nil
// skips the checks that need it: a function's own identity (the scheduler runs the preflight at
// start) holds only what its code uses, so it cannot list Event Notifications topics or IAM
// policies, while an operator's identity can.
//
// Routes are proven, not assumed: the preflight publishes one dev.keyguard.preflight event, which
// Event Notifications delivers along every route that takes it; each function records its receipt
// as preflight/<run id>/<function>.json (RecordReceipt, wired once in shared/runtime around every
// handler), and the preflight waits for the receipts it expects. The runner job, started by Code
// Engine rather than by Event Notifications, gets a named job run carrying the same event, which
// records its receipt and exits at once. The scheduler's tick route records the time of the last
// tick (RecordTick), and host agents their last poll (RecordAgentPoll).
//
// Run executes every check concurrently within one budget and returns a Report, which prints as
// a table or as JSON.
package preflight
