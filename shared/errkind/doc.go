// Package errkind is keyguard's one vocabulary of error kinds. An adapter's error type says its
// kind (a Kind method); handlers and the edge ask Of, IsTransient or IsPermanent instead of
// knowing each adapter's error type: transient errors are retried (and answered 5xx, so Event
// Notifications redelivers), permanent ones are not (a 4xx, or a failure counted at once).
package errkind
