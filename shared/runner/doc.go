// Package runner is the backup runner job's logic for self-managed Db2 (executor db2cli): given a
// backup.started event it inspects the database through its command line, plans the backup
// (online or offline, full / incremental / delta, pending states, free space), runs and verifies
// it with db2ckbkp, streams the image (and a copy of a local native-encryption keystore) to COS
// with SHA-256, writes the immutable catalog entry, removes the local copy, and publishes
// backup.completed or backup.failed with a classified reason. A run id already in the catalog is
// not run again: its outcome is published again.
//
// Db2 decides what an incremental or delta builds on from its own recovery history, so the
// runner reads it first (db2 list history backup) and takes a full instead, with a note saying
// why, when the image Db2 would build on is not a usable catalog entry of the run's key version:
// discarded, taken outside keyguard, of another key version, or with a broken chain. Backups in
// Db2's history that the catalog does not hold are logged and noted, never chained on. When a
// run fails after Db2 wrote its image, the image is cataloged as discarded and backup.failed
// names it (discarded_image), so that nothing builds on it.
package runner
