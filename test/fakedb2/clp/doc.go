// Package clp is the logic of keyguard's fake Db2 command line: what `db2` and `db2ckbkp` print
// and do, driven by a JSON state file. The binaries in test/fakedb2/cmd are thin mains around
// DB2 and Ckbkp; test/fakedb2 builds them and writes the state. Nothing here talks to a real Db2.
//
// Output follows IBM's documented formats for the commands keyguard runs (get db cfg, list
// applications, connect, CALL GET_DBSIZE_INFO, backup database, list history backup, db2ckbkp) closely enough for
// shared/db2's parsers; message texts are written from the documented message catalogue's
// wording as remembered, not copied.
//
// Images are real files of State.ImageBytes bytes: a 4 KiB header (magic and JSON metadata), a
// deterministic pseudo-random body (ChaCha8 seeded by database, timestamp and type, so the
// SHA-256 of an image is stable and meaningful) and a 64-byte trailer holding the body's
// SHA-256. They are streamed, never held in memory, and written without holes.
package clp
