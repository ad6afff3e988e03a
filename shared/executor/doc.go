// Package executor holds the backup executors that have no cloud service of their own (the
// cloud ones live with their SDK adapters: shared/codeengine, shared/db2saas). Pull is the
// executor of self-managed databases served by a runner agent on the Db2 host, which pulls its
// runs from the state objects. The local stack's simulated Db2 and child-process executor are
// test code (test/simdb2, test/procexec): no deployed function links them.
package executor
