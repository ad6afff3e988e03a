// Package state holds the per-database coordination object (State) and the compare-and-swap
// stores that keep it: COS (state/<database>.json, If-Match / If-None-Match) and an in-memory one
// for unit tests. Update is the only way handlers change a state: read, apply, write, and on a
// lost race read again, within a deadline.
package state
