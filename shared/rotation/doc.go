// Package rotation handles key events: key.rotated (from the scheduler's Key Protect poll,
// keyguard's own managed rotation, or a Cloud Logs alert on kms.secrets.rotate) opens a rotation
// window on every database the key protects, once per key version whichever path reported it;
// key.state_changed blocks backups of those databases while the key is not active and alerts.
package rotation
