// Package policy holds keyguard's decisions as pure functions of (state, database policy, now):
// which schedule slot is due, whether to start a backup or defer it and why, how long to back off
// after a failure, when to alert, and when a rotation window may close. Nothing here does I/O or
// reads a clock; callers pass the time in.
package policy
