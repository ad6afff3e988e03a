// Command keyguard is the operator command line: status (the fleet table, or a database in
// full), backup list / show / create / delete / fetch, plan-restore, prune, fleet validate /
// push / show and version, on a deployment configured by the same environment variables as the
// runner job (only backup create needs Event Notifications). It is built on cobra: one file per
// command (cmd_<name>.go); the domain rules it applies (holds, retention, restore chains and
// plans) live in the shared packages. Writes are dry runs unless -confirm, and exit codes are
// 0 done, 1 failed or refused, 2 bad command line.
//
// It links no test code: the local stack is its own command (test/cmd/keyguard-local serve).
package main
