// Package policy holds keyguard's decisions as pure functions of (state, database policy,
// observations, now). Handlers observe (read the state, poll Key Protect, probe the executor,
// look a run up in the catalog), call one function of this package inside the state's
// compare-and-swap, then perform the effects it returns (start or cancel a run, publish events).
// Nothing here does I/O or reads a clock.
//
// The steps, one per way the state changes:
//   - Tick: a scheduler tick (key changed in the fleet policy, Key Protect observed, run in
//     flight reconciled from evidence or its lease, rotation window closed, unrestorable images
//     named, then the schedule decided: start, defer or idle);
//   - Started / StartFailed: what the executor answered to a start;
//   - Completed / Failed: a backup outcome (an event, a run record, a probe);
//   - Rotated / KeyState / Unrestorable: key events;
//   - Request: an on-demand backup.
//
// Hold is the one place the rules that keep a backup from starting live; Decide, Request and
// the operator command all ask it.
package policy
