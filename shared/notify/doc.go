// Package notify publishes keyguard events through IBM Cloud Event Notifications (EN). It wraps
// the EN SDK's SendNotifications behind Client.Send, for the functions that emit events
// (scheduler, rotation, runner, completion). Consumers define their own one-method interface:
//
//	type Sender interface{ Send(ctx context.Context, id string, p events.Payload) error }
//
// What a notification carries: specversion "1.0"; the caller's id, which must be deterministic
// (derived from what caused the event, e.g. the run id) so that receivers recognise EN's
// duplicates and a caller's own retries; source "keyguard/<SourceID>" unless Options.Source says
// otherwise (receivers de-duplicate on source plus id, so ids must be unique per source); type
// p.EventType(); time from the injected clock; ibmensourceid = SourceID; human summaries in
// ibmendefaultshort and ibmendefaultlong (for an alert: severity, reason and message);
// ibmenseverity (alerts: critical HIGH, warning MEDIUM, info LOW; failed backups MEDIUM; a key
// that is no longer usable HIGH; everything else LOW); subject = the database, or the key CRN
// for key events; data = the payload as a JSON object, datacontenttype application/json.
//
// Errors: an invalid payload or id is refused before anything is sent. Every error Send returns
// is an *Error; IsTransient says whether trying again later may succeed (HTTP 408, 429, 5xx
// except 501, network failures, timeouts) or not (other 4xx, including a 400 from IAM for a bad
// API key, and invalid input). The SDK retries transient failures a bounded number of times and
// the whole Send is bounded by Options.Timeout (5 s by default), well under the 10 s EN gives a
// receiver, so a handler can emit an event and still answer in time.
//
// Authentication is any core.Authenticator: NewIAMAuthenticator for an API key, or go-sdk-core's
// ContainerAuthenticator for a Code Engine trusted profile. Secrets are never logged.
package notify
