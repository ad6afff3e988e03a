// Package codeengine starts keyguard's runner as IBM Cloud Code Engine job runs, one per backup,
// and asks how a run is doing. The scheduler uses Client as its executor for databases whose
// backups run in the runner job; the Code Engine API v2 is called through go-sdk-core
// (core.BaseService, core.RequestBuilder), not the Code Engine SDK.
//
//	POST {URL}/projects/{project_id}/job_runs        (Start)
//	GET  {URL}/projects/{project_id}/job_runs/{name} (Status)
//
// URL is the regional API endpoint, https://api.<region>.codeengine.cloud.ibm.com/v2 (RegionURL).
//
// What a job run carries: job_name = Options.JobName (the runner job, whose image, command,
// secrets and limits come from its Terraform definition); name = JobRunName(run id), so a run id
// always maps to the same job run; scale_array_spec "0" (exactly one instance); and two literal
// environment variables from shared/jobevent: ibmendata, the backup.started event as an Event
// Notifications notification (the runner reads it with events.FromJobEnv exactly as if EN had
// started the job), and KEYGUARD_RUN_ID.
//
// Promises: Start is idempotent by run id: a job run of that name that already exists (409) is
// success. (If Code Engine has since deleted that job run, a second Start creates it again: the
// runner must be idempotent by run id too.) Status answers Known false for a job run that does not
// exist (404). Every error is an *Error; IsTransient tells 408, 429, 5xx except 501, network
// failures and timeouts (worth trying again later) from everything else (bad input, 400, 401,
// 403, 404 on create, an IAM refusal of the API key). Its Kind method says the same in keyguard's
// vocabulary (shared/errkind): transient; configuration for refused credentials (IAM, 401, 403);
// invalid for a run refused before sending; permanent for the rest. Transient failures are
// retried (shared/retry) with a jittered doubling backoff, a longer Retry-After replacing the
// wait, within one total budget per call (Options.Timeout, 5 s by default, under the 10 s Event
// Notifications gives a handler). A Client is safe for concurrent use. Nothing secret is logged:
// the environment values are never logged.
package codeengine
