// Package catalog is keyguard's record of backup images and the pure decisions made from it:
// which images a restore needs, which restore to plan for a point in time, and which images
// retention may delete.
//
// One Entry describes one Db2 backup image (full, incremental or delta). It is stored once, as
// pretty-printed JSON, at catalog/<database>/<timestamp>-<type>.json in COS (under the object
// store's prefix), written with If-None-Match: * and never rewritten: Catalog.Put of an identical
// entry again succeeds (an idempotent retry), a different entry at the same key fails with
// ErrExists. Stored entries are decoded strictly: unknown fields, trailing data, a newer schema
// version or an invalid entry are errors. List does not let one such object stop every backup,
// restore and retention of the database: ListReport returns the entries it could read and
// reports the objects it skipped (Skipped, with the reason), and List is its entries alone.
// Retention must not decide from a partial view, so Listing.Retain deletes nothing while any
// object is skipped. The sub-folders catalog/<database>/runs/ and restores/ are reserved for
// other record kinds and ignored.
//
// Entries are ordered by Compare: by their UTC instants, not by Db2's timestamps, which are
// the server's local time and repeat an hour when clocks go back.
//
// The index. Reading one object per entry does not scale (100,000 entries are 100,000 GETs,
// and a listing of catalog/<db>/ alone outlasts an event's delivery), so each database has an
// index beside its entries, at index/<database>/ (outside catalog/, whose objects are
// immutable records copied to the archive): a small head, rewritten by compare-and-swap
// (If-Match; If-None-Match to create), and a base, written once under a name of its own and
// replaced when the head grows past Options.CompactAfter summaries. The index holds one
// Summary per entry (the fields retention, chains, planning and listings read), never the
// only copy of anything: it is rebuilt from the entries when missing or unreadable (Reindex
// rebuilds it on demand). Put records an intent on the head before it writes the entry and
// replaces it with the summary after, so a crash in between leaves an intent that the next
// reader resolves by reading the entry. Delete and DeleteMany mark entries as deleting on the
// head before they delete anything (no reader of the index sees them from then on), then
// delete the files, the entries (S3 DeleteObjects, a thousand keys a request), and the marks;
// the next Prune finishes a deletion that stopped half way. Every change of the head is
// idempotent and retried on conflict, so concurrent Puts, deletions, prunes and rebuilds lose
// nothing. Summaries, Prune, DeleteMany and the PlanRestore and Chain methods are served by
// the index; List, ListReport and Get read the entries themselves.
//
// Chain, PlanRestore and Retain are pure functions of a database's entries. Chain follows the
// ParentTimestamp links the way Db2's RESTORE ... INCREMENTAL AUTOMATIC walks its recovery
// history (see Chain). Retain never drops an image that a kept chain needs, never keeps fewer
// than RetentionPolicy.KeepFulls full chains nor loses the newest restorable chain, and never
// drops an image a running restore uses.
//
// Users: the backup runner writes entries (Put); the completion handler applies retention
// (Prune: Summaries, Listing.Retain, DeleteMany, incremental across successes); the operator
// command line and the restore flow plan restores (List and PlanRestore, or the index-served
// Catalog.PlanRestore). Catalog is safe for concurrent use; the pure functions do not modify
// their arguments.
package catalog
