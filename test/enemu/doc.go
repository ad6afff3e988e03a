// Package enemu emulates the part of IBM Cloud Event Notifications (EN) that keyguard uses, for
// tests and the local stack: the SendNotifications REST operation in, HTTP delivery to subscribed
// Code Engine apps out, with EN's best-effort behaviour.
//
// In: POST /v1/instances/{instance_id}/notifications, the path and JSON body the real
// event-notifications-go-admin-sdk sends. A request needs a bearer token issued by the IAM emulator
// mounted on the same handler at /identity/token (401 otherwise). The notification must carry
// specversion "1.0", id, source, type, ibmensourceid, ibmendefaultshort and ibmendefaultlong, and
// data when present must be a JSON object (400 with the reason otherwise). An accepted notification
// is recorded and answered 202 {"notification_id": ...} like the real service.
//
// Out: each accepted notification is delivered, asynchronously, to every matching subscription as
// EN delivers to a Code Engine app: an HTTP POST of the plain notification JSON plus
// notification_id, Content-Type application/json, no ce-* headers, the subscription's custom and
// sensitive headers (never logged). Each attempt has a timeout (10 s by default); a non-2xx answer
// or a timeout is retried up to 3 times over about 10 s (configurable), after which the delivery is
// lost: recorded as lost and never tried again. Tests inject loss and duplicate delivery with
// DropNext, DuplicateNext, a Fault hook or probabilities. WaitIdle tells when every delivery has
// settled. Publish injects a notification as if another EN source (periodic timer, Cloud Logs)
// had sent it; POST /_emulator/publish does the same over HTTP for tools on loopback.
//
// Admin (read only): the source, topic, destination and subscription listings and look-ups of
// the event-notifications-go-admin-sdk (GET .../sources, .../topics[/{id}], .../destinations[/{id}],
// .../subscriptions/{id}), derived from the subscriptions: each names its topic, whose rules are
// one event_type_filter "$.type == '<type>'" per type and source (a schedule rule for a
// periodic-timer source), and describes its destination (ibmce application or job, smtp_ibm with
// its subscribed and invited addresses, slack, ...). Sources are added with AddSource. A topic
// outlives its subscriptions, so Unsubscribe leaves a route that delivers nowhere, as deleting a
// subscription does in the service. Notification filters are shown, not applied.
//
// New builds an Emulator to mount on any listener (it is an http.Handler); Start runs one on a
// loopback httptest server for a test. An Emulator is safe for concurrent use.
package enemu
