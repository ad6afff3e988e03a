// Package restore is the restore job's logic for self-managed Db2 (executor db2cli): given a
// restore.requested event it reads the image catalog, plans the restore with
// catalog.PlanRestore, downloads every image of the chain from COS into the database's backup
// directory (checking each one's SHA-256 against the catalog while it is written, so a damaged
// object never reaches Db2), opens the sealed native-encryption keystore copied with the target
// image (Key Protect unwraps its data key: see package keystore; without Restorer.Keys, or with
// Key Protect refusing, the restore fails before anything is downloaded) and unpacks it beside
// them, runs the plan's RESTORE DATABASE (INCREMENTAL AUTOMATIC for a chain) and, when Db2
// leaves the database rollforward pending, the plan's ROLLFORWARD ... AND STOP, removes the
// downloaded images and publishes restore.completed. A failed restore is an outcome
// (Success false, with a classified message), not an error.
//
// Restoring overwrites a live database (REPLACE EXISTING), so a restore is identified by its
// event and, when Restorer.Marks is set, runs at most once per event: see Restorer.Handle.
package restore
