// Package sim is keyguard's deterministic simulation: the real handlers (scheduler, rotation,
// completion, composed by shared/runtime.Routes) over the real policy, state, catalog and outbox
// code, run against simulated Cloud Object Storage, Key Protect, Event Notifications, Code
// Engine job runs and Db2, in virtual time, on one goroutine, from one seed. It plays many
// databases over many days of key rotations, backup failures, lost, duplicated, late and
// reordered notifications, COS and Key Protect misbehaving, crashes between any two steps of a
// handler, and operators' actions, and checks keyguard's invariants (Invariants) at every step.
// The same seed replays the same run, step for step (Report.Digest).
//
// Beside keyguard it plays, over the same trace of faults, the cron script keyguard replaces
// (shared/requirements/01-rotation-aware-backup-script.txt), and reports both side by side.
//
// # Time and concurrency
//
// An event queue ordered by virtual time (ties broken by the seed) drives a clock.Fake. Every
// call an invocation makes to the platform (a state read, an object write, a listing, a
// publish, a job start, a Key Protect call, a wait between compare-and-swap attempts) is a step
// that takes virtual time; the events that fall due meanwhile run inside it, before the step
// completes, as deliveries that arrive while a handler works do. That is how two ticks, or a
// tick and a completion, race for one state object. Reads of catalog entries, which the catalog
// makes on several goroutines, take no time and decide their faults from a hash of the key and
// the instant, so that concurrency inside a handler changes nothing.
//
// # Crashes
//
// Before and after every effectful step (a write, a deletion, a start, a cancel, a publish) and
// before it answers, an invocation crashes with the profile's probability: the simulation
// unwinds it (a panic it recovers), leaving what it wrote, and Event Notifications redelivers
// (a crashed delivery is a failed attempt) or the next tick finds what was left.
//
// It is test code: no deployed binary links it (test/hygiene).
package sim
