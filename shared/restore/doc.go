// Package restore is the restore job's logic for self-managed Db2 (executor db2cli): given a
// restore.requested event it restores the database's newest restorable point (or an image, or a
// point in time) in place or into a new database, following Db2's documented procedure (see
// Restorer.restore for the steps): it checks a point in time against the restorable range,
// plans the chain with catalog.PlanRestore, checks the keys in Key Protect, downloads every
// image from COS into the database's backup directory (checking each one's SHA-256 against the
// catalog while it is written, so a damaged object never reaches Db2) and has db2ckbkp check
// the target, opens the sealed native-encryption keystore copied with the target image and puts
// it where KEYSTORE_LOCATION points when the instance has none, disconnects applications (only
// when asked: QUIESCE ... FORCE CONNECTIONS) or refuses, refuses to replace an existing database
// it was not told to, runs RESTORE (INCREMENTAL AUTOMATIC, LOGTARGET, REDIRECT, WITHOUT ROLLING
// FORWARD) with RESTORE ... ABORT after a failure, the ROLLFORWARD with its overflow log path,
// an optional probe query, and for a drill DROP DATABASE; it measures the restore time, records
// the restore in the catalog (catalog.RestoreRecord) and publishes restore.completed. A failed
// restore is an outcome (Success false, with a class and Db2's message code), not an error.
//
// Restoring in place overwrites a live database (REPLACE EXISTING), so a restore is identified
// by its id (the event's, or restore.requested's id) and, when Restorer.Marks is set, runs at
// most once per id: see Restorer.Handle.
package restore
