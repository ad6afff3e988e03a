// Package logchain reads Db2's archived log files the way a restore will need them: it lists
// the archive (a directory the runner can list for LOGARCHMETH1 DISK:<path>, or a COS prefix
// for DB2REMOTE), parses Db2's log file names (S0000123.LOG under C0000000, the log chain, in
// NODE0000/LOGSTREAM0000 directories), and checks the chain in the manner of WAL-G's
// wal-verify: every log file from the first one the oldest kept restorable point needs up to
// the current active log must be archived. A file absent below Db2's first active log is
// "missing" (a roll-forward through it halts); absent at or above it is "not archived yet"
// (still in the active log path). It also decides which archived logs retention may delete:
// only those older than every kept chain and point-in-time window needs, and none when Db2's
// own AUTO_DEL_REC_OBJ=ON deletes them with its recovery history.
//
// The runner writes a Report at logchain/<database>.json after each backup; keyguard check
// reads it (CRITICAL on a gap inside the restorable range, the newest archived log's age).
// Everything here but the listers is pure: the clock is the caller's.
package logchain
