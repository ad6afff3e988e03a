// Package scheduler is the tick handler. On every tick it reconciles each database of the fleet
// (runs past their lease, rotation windows that may close, alerts still pending), then asks
// policy.Decide what to do and, to start a backup, first takes the slot and records the run by
// compare-and-swap on the database's state, and only then asks the executor. Every decision and
// its reason is kept in the state and logged. Ticks are idempotent: a duplicate tick finds the
// slot taken.
package scheduler
