// Command keyguard is the operator command line.
//
//   - keyguard dev: the whole system on loopback (what `make run` does): a real S3 server, the
//     Key Protect and Event Notifications emulators, the three functions, the runner against a
//     fake Db2 command line and a simulated Db2, through a scripted week in accelerated time,
//     printing a timeline.
//   - keyguard status, backup list/show/create/delete, plan-restore, prune: operations on a
//     deployment, configured by the same environment variables as the runner job.
package main
