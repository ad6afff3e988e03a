// Package runner is the backup runner job's logic for self-managed Db2 (executor db2cli): given a
// backup.started event it inspects the database through its command line, plans the backup
// (online or offline, full / incremental / delta, pending states, free space), runs and verifies
// it with db2ckbkp, streams the image (and a sealed copy of a local native-encryption keystore:
// see below) to COS with SHA-256, records the immutable catalog entry and the run's outcome,
// removes the local copy, and publishes backup.completed or backup.failed with a classified
// reason. A run already recorded is not run again: its outcome is published again.
//
// Db2 decides what an incremental or delta builds on from its own recovery history, so the
// runner reads it first (db2 list history backup) and takes a full instead, with a note saying
// why, when the image Db2 would build on is not a usable catalog entry of the run's key version:
// discarded, taken outside keyguard, of another key version, or with a broken chain. Backups in
// Db2's history that the catalog does not hold are logged and noted, never chained on. When a
// run fails after Db2 wrote its image, the image is cataloged as discarded and backup.failed
// names it (discarded_image), so that nothing builds on it.
//
// The keystore copy (the PKCS#12 keystore and its stash file, which together open every
// natively encrypted image) is never stored in clear: it is sealed with package keystore under a
// data key that Key Protect wraps with the database's keystore_key_crn, and stored as
// images/<database>/<timestamp>/keystore.sealed. Sealing comes before any upload, so a run whose
// keystore cannot be wrapped stores nothing and fails: transient when Key Protect is unavailable,
// configuration when the key refuses to wrap or Runner.Keys is nil.
package runner
