// Package db2 drives self-managed Db2 through its command line processor (CLP) without running
// anything itself: it parses what `db2` and `db2ckbkp` print, classifies Db2 messages into
// keyguard's failure classes, and plans a backup as argument vectors from a request and the
// database's observed state. The only way it runs a command is through Runner, an interface the
// caller (the runner job's executor) implements with os/exec, and tests with a function.
//
// Who uses it: the Db2 CLI executor inside the runner job (Inspect, ListHistory, PlanBackup,
// Execute), and tests through the fake command line in test/fakedb2.
//
// What it promises:
//   - Parsers never panic on any input. They return an *Error when the output carries a Db2 error
//     message (its class from Classify) or when the output is not the documented shape (class
//     permanent, reason unrecognised-output): a parser never guesses.
//   - PlanBackup is a pure function of its arguments. Every refusal is an *Error with a class and a
//     reason; every adjustment to the request (offline fallback, upgrade to full, dropped options)
//     is written in Plan.Notes so the caller can log and record it.
//   - Image names follow Db2's documented convention on Linux and UNIX (see ImageName).
//
// Db2 CLP caveat for implementers of Runner: separate `db2` invocations share one CLP back-end
// process per parent process, so a `db2 connect to X` in one call is visible to the next call
// from the same parent. Inspect relies on that and ends with `db2 connect reset` so that its own
// connection never counts against an offline backup.
package db2
