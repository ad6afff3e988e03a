// Package db2saas takes Db2 on Cloud (Db2 SaaS) backups through the service's REST API and
// follows them to completion. It has two parts.
//
// Client wraps go-sdk-core (a core.BaseService and any core.Authenticator: NewIAMAuthenticator
// for an API key, core.ContainerAuthenticator for a Code Engine trusted profile) around the two
// backup operations of the Db2 on Cloud API (context root /dbapi/v4):
//
//	POST /manage/backups/backup   create an on-demand backup; answers {"task":{"id":"<task CRN>"}}
//	GET  /manage/backups          list the instance's backups; answers {"backups":[{"id","type",
//	                              "status","created_at","size","duration"}, ...]}
//
// Both need Authorization: Bearer <IAM token> and x-db-profile: the instance CRN, URL-encoded
// (url.QueryEscape: "crn%3Av1%3A...%3Aa%2F<account>%3A<guid>%3A%3A", as in IBM's own SDK tests).
// The service has no status-by-id and no restore operation, and the create answer names a task,
// not a backup: completion is learned only by listing. What IBM's SDKs and docs do not say, and
// this package therefore assumes (each said again on the declaration concerned): the status
// values besides "running" (taken as running / completed / failed, case-insensitive, with a few
// synonyms; anything else is StatusUnknown), the unit of size (bytes), created_at being the
// backup's start, and the answer to a create while a backup is running (any 409 is taken as "a
// backup is already in progress").
//
// Every call is bounded: one attempt by Options.AttemptTimeout, the whole call, retries included,
// by Options.Timeout (3 s by default), so that an Event Notifications handler, which has 10 s,
// can list and create and still answer. Transient failures (HTTP 408, 429, 5xx except 501,
// network errors, timeouts) are retried (shared/retry) up to Options.MaxRetries times with a
// short jittered backoff that honours Retry-After when it fits the budget. Every error is an
// *Error carrying a failure class (events.Transient, events.Configuration for a missing instance
// or credentials refused by IAM or the service (401, 403), events.Permanent otherwise):
// IsTransient and ClassOf read it, and its Kind method says it in keyguard's vocabulary
// (shared/errkind; an invalid run is of kind invalid). A create is retried too: if the first
// attempt did start a backup, the retry is refused with ErrBackupInProgress (transient, but not
// retried within the call) and Executor.Start then finds the backup by listing.
//
// Executor runs keyguard backups on Db2 on Cloud: Start creates the backup of a run at most once
// (idempotent by run, see Executor for the matching rule, since the service keeps no id of ours),
// and Probe lists backups and turns the run's backup into backup.completed or backup.failed, or
// nil while it runs. Only full online backups exist on Db2 on Cloud; any other request is refused
// with a permanent error.
//
// Secrets (API keys, tokens) never reach a log line or an error message from this package.
package db2saas
