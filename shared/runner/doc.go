// Package runner is the backup runner job's logic for self-managed Db2 (executor db2cli): given a
// backup.started event it inspects the database through its command line, plans the backup
// (online or offline, full / incremental / delta, pending states, free space), runs and verifies
// it with db2ckbkp, streams the image (and a copy of a local native-encryption keystore) to COS
// with SHA-256, writes the immutable catalog entry, removes the local copy, and publishes
// backup.completed or backup.failed with a classified reason. A run id already in the catalog is
// not run again: its completion is published again.
package runner
