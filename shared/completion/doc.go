// Package completion handles backup outcomes (backup.completed, backup.failed): it closes the run
// in the database's state by run id, resets or counts consecutive failures, plans the retry with
// backoff and queues an alert at the threshold, then sends pending alerts. Each outcome counts once,
// whether it arrives twice, late (after its lease expired) or for a run the state no longer holds.
package completion
