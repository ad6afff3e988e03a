// Command keyguard is the operator command line: keyguard status, backup list/show/create/delete,
// plan-restore and prune operate on a deployment, configured by the same environment variables
// as the runner job. It links no test code: the local stack is its own command
// (test/cmd/keyguard-local).
package main
