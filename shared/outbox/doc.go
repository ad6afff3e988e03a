// Package outbox delivers the alerts a state holds as pending. A handler first records an alert in
// the state (by CAS, with a stable id), then calls Flush; an alert leaves the state only after
// Event Notifications accepted it. A crash or a failed send leaves it pending, and the next event
// or tick for that database sends it again under the same id, so receivers can drop duplicates.
package outbox
