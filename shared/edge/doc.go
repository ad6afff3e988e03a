// Package edge is where a keyguard function meets the platform. It serves a Handler over HTTP
// (a Code Engine app: bearer-secret check in constant time, 256 KiB limit, any of the three inbound
// event shapes, a deadline) or runs it once from a Code Engine job's environment, and it decides
// delivery (Status): bad input, and a failure whose kind (shared/errkind) is permanent,
// configuration or invalid, is a 4xx with a reason and is not delivered again; a transient failure
// is a 5xx so Event Notifications redelivers; success is a 200 with what was done.
package edge
