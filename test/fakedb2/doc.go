// Package fakedb2 gives tests a fake Db2 command line: `db2` and `db2ckbkp` programs built from
// ./cmd, whose output follows IBM's documented formats and whose database is a JSON state file
// named by the FAKEDB2_STATE environment variable (see clp.State for its fields and clp.Fault for
// the failures it can inject: online-not-allowed, backup-pending, trackmod-off, disk-full,
// key-unavailable, corrupt-image, restore-media).
//
// Use it from a test:
//
//	bin := fakedb2.Build(t)                       // go build, once per test process
//	state := filepath.Join(t.TempDir(), "db2.json")
//	fakedb2.WriteState(t, state, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/archive/"})
//	r := fakedb2.Runner{Bin: bin, State: state}   // satisfies shared/db2.Runner
//
// `db2 backup database ...` writes a real image file and records it in State.History, Db2's
// recovery history, with the image it was built on (Backup.Base: an incremental on the latest
// full, a delta on the latest backup, whether or not that image's file still exists), and `db2
// list history backup all|since <ts> for <db>` prints that history; every command line is
// appended to State.Calls, so a test can assert what was run.
//
// Recovery follows Db2's documented rules closely enough to fail for the right reasons: Write
// commits rows at a time into the active log file, which backups and ARCHIVE LOG archive;
// RESTORE (INCREMENTAL AUTOMATIC, INTO a new database, REDIRECT with SET STOGROUP PATHS and
// CONTINUE, LOGTARGET, WITHOUT ROLLING FORWARD, INCREMENTAL ABORT) sets a database's rows to the
// image's; ROLLFORWARD replays the writes after it, to the end of the logs or to a time, and
// halts with SQL4970N when a log file it needs is missing from the archive (State.MissingLogs)
// and from its OVERFLOW LOG PATH, or when the time is past the newest log record; QUIESCE and
// FORCE APPLICATION disconnect applications; SELECT COUNT(*) reads the connected database's
// rows; DROP DATABASE drops. testdata/recover.golden in package clp is a whole session.
//
// With LOGARCHMETH1 DISK:<an existing directory>, archived log files are real files under
// <dir>/<instance>/<DATABASE>/NODE0000/LOGSTREAM0000/C0000000, and one removed from there halts
// a roll-forward that needs it. State.Partitions makes a partitioned database: BACKUP ... ON ALL
// DBPARTITIONNUMS writes one image per partition and prints the per-partition result table;
// SET CLIENT CONNECT_DBPARTITIONNUM picks the partition a RESTORE runs on, and a partition
// other than State.CatalogPartition is refused (SQL2551N, the fake's choice of code) until the
// catalog partition was restored from that image; the roll-forward waits for every partition.
// RESTORE ... TABLESPACE (...) ONLINE restores table spaces from a table space or database image
// and ROLLFORWARD ... TABLESPACE (...) ONLINE ends their pending state.
package fakedb2
