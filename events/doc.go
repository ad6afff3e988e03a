// Package events is keyguard's event contract: the CloudEvents types keyguard emits and consumes,
// their payloads (one Go type each, with a JSON Schema under schemas/ and samples under testdata/),
// and the decoders for the shapes in which events reach a function: a binary or structured
// CloudEvent over HTTP, a plain Event Notifications notification, and the Code Engine job
// environment (ibmendata, CE_*). Every decoder returns a clear error for bad input and never panics.
package events
