// Package ceemu emulates the part of the IBM Cloud Code Engine API v2 that keyguard uses, for
// tests and the local stack: creating a job run from a job and reading it back.
//
//	POST /v2/projects/{project_id}/job_runs        body: job_name, name, run_env_variables,
//	                                               run_arguments, scale_array_spec; answers 202
//	                                               with the job run; 409 when the name is taken
//	GET  /v2/projects/{project_id}/job_runs/{name} 200 with the job run, 404 when unknown
//	GET  /v2/projects/{project_id}/jobs/{name}     200 with the job (name, id, project_id,
//	                                               image_reference), 404 when Options.Jobs is set
//	                                               and does not list it (RemoveJob, AddJob)
//
// A job run carries name, id, job_name, project_id, resource_type "job_run_v2", created_at,
// run_env_variables, run_arguments, scale_array_spec, status (pending, running, completed,
// failed) and status_details (requested / pending / running / succeeded / failed counts, start
// and completion times, failed indices, per-index last_failure_reason). Errors use IBM's platform
// error body: {"errors":[{"code","message"}],"trace","status_code"}.
//
// Every API request must carry a bearer token issued by the IAM emulator mounted on the same
// server at /identity/token (401 otherwise). Options.ProjectID and Options.Jobs, when set, limit
// the project and the job names that exist (404 otherwise). Runs start as pending and stay so
// until the test (or the OnRun hook, which is how a local stack actually executes the runner)
// moves them with SetStatus. FailNext injects HTTP failures (429, 5xx) into the next API
// requests.
//
// What is not confirmed against the real service: the exact error codes and the status used for
// a duplicate job run name (409 is assumed), the status for an unknown project (404 assumed), and
// whether unknown body fields are refused (they are ignored here).
//
// New builds an Emulator to mount on any listener (it is an http.Handler); Start runs one on a
// loopback httptest server for the length of a test. An Emulator is safe for concurrent use.
package ceemu
