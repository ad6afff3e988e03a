// Package executor holds the backup executors the scheduler starts runs with. This file set has
// the simulated Db2: deterministic durations, sizes and checksums, failure injection by rule, and
// an outcome (backup.completed or backup.failed) published through Event Notifications exactly as
// the runner job publishes it, so the scheduler -> executor -> completion loop closes without Db2.
package executor
