// Package jobevent builds what a runner job run is started with: the backup.started event as an
// Event Notifications notification in the variable ibmendata, plus KEYGUARD_RUN_ID. Both ways of
// starting the runner use it (the Code Engine executor in shared/codeengine and the local process
// executor in shared/executor), so the runner reads its event with events.FromJobEnv exactly as if
// Event Notifications had started the job.
//
// The notification is deterministic: the same run gives the same bytes (id "<run id>/started",
// the id the scheduler publishes backup.started under; time = the run's started_at; a
// notification_id derived from source and id), so a retried start carries the same event.
package jobevent
