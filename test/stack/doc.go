// Package stack assembles the whole keyguard system on loopback for the dev command (`make run`)
// and the end-to-end tests: a real S3 server (versitygw) for COS, the Event Notifications and IAM
// emulators, the scheduler, rotation and completion functions each behind its own HTTP listener
// with the real edge (bearer secret, limits), subscriptions built from config.Routes, and the
// simulated Db2 executor, all on one fake clock that the caller advances.
package stack
