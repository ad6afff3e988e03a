// Package db2saasemu emulates the backup operations of the Db2 on Cloud (Db2 SaaS) REST API, for
// tests and the local stack, closely enough that shared/db2saas's go-sdk-core client talks to it
// unchanged. It mounts an IAM token endpoint (test/iamemu) at /identity/token on the same handler.
//
// Operations, under the context root /dbapi/v4:
//   - POST /manage/backups/backup: starts an on-demand backup of the instance and answers 200
//     {"task":{"id":"<instance CRN stem>:task:<uuid>"}}, as IBM's SDK tests show. While a backup
//     of the instance is running it answers 409 instead (the service runs one backup at a time;
//     the real status code and body for this case are not documented: 409 is this emulator's
//     choice).
//   - GET /manage/backups: answers 200 {"backups":[{"id","type","status","created_at","size",
//     "duration"}, ...]}, newest first. type is "on_demand" for backups created through the API
//     (seeded ones may say "scheduled"); status is "running" until the backup's duration has
//     passed on the injected clock, then "completed" (or "failed" when injected); created_at is
//     RFC 3339 with milliseconds in UTC ("2025-01-27T08:43:46.000Z", the documented example's
//     form); size is in bytes (0 while running or failed); duration is whole seconds (elapsed so
//     far while running).
//
// Every API request needs Authorization: Bearer <token issued by the IAM emulator> (401
// otherwise) and x-db-profile: the instance CRN URL-encoded (400 when missing, when it still
// holds a raw ':' or '/', or when it does not decode to a CRN; 404 when Options.Instances lists
// the known instances and this is not one of them). Errors use the IBM Cloud API handbook body,
// {"errors":[{"code","message"}],"trace","status_code"}; the codes are this emulator's own.
//
// Test controls: AddInstance, AddBackup (seed a backup, e.g. the service's scheduled one),
// FailNextBackup (the next created backup ends "failed"), FailNext (the next n API requests
// answer a status, e.g. 429 with Retry-After or 503), SetDuration, Backups (what is stored),
// Requests (what arrived, with the raw x-db-profile header). Backup times follow the injected
// clock (shared/clock Fake in tests); the IAM emulator judges tokens by the wall clock, as
// go-sdk-core does.
//
// An Emulator is safe for concurrent use. New binds nothing; Start serves it on a loopback
// httptest server for the length of a test.
package db2saasemu
