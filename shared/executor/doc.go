// Package executor holds local backup executors the scheduler starts runs with (the cloud ones
// live with their SDK adapters: shared/codeengine, shared/db2saas). Simulated is a simulated Db2:
// deterministic durations, sizes and checksums, failure injection by rule or while the database
// re-wraps its keys, and an outcome (backup.completed or backup.failed) published through Event
// Notifications exactly as the runner job publishes it, so the scheduler -> executor ->
// completion loop closes without Db2. Process starts the real runner as a child process, as a
// Code Engine job run starts it in a container.
package executor
