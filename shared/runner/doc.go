// Package runner is the backup runner job's logic for self-managed Db2 (executor db2cli): given a
// backup.started event it inspects the database through its command line, plans the backup
// (online or offline, full / incremental / delta, pending states, free space), runs and verifies
// it with db2ckbkp, streams the image (and a sealed copy of a local native-encryption keystore:
// see below) to COS with SHA-256, writes the immutable catalog entry, removes the local copy, and
// publishes backup.completed or backup.failed with a classified reason. A run id already in the
// catalog is not run again: its completion is published again.
//
// The keystore copy (the PKCS#12 keystore and its stash file, which together open every
// natively encrypted image) is never stored in clear: it is sealed with package keystore under a
// data key that Key Protect wraps with the database's keystore_key_crn, and stored as
// images/<database>/<timestamp>/keystore.sealed. Sealing comes before any upload, so a run whose
// keystore cannot be wrapped stores nothing and fails: transient when Key Protect is unavailable,
// configuration when the key refuses to wrap or Runner.Keys is nil.
package runner
