// Command db2 is keyguard's fake Db2 command line processor for tests. Its state is the JSON
// file named by FAKEDB2_STATE; see package github.com/keyguard-dev/keyguard/test/fakedb2.
package main

import (
	"os"

	"github.com/keyguard-dev/keyguard/test/fakedb2/clp"
)

func main() {
	os.Exit(clp.DB2(os.Args[1:], os.Getenv(clp.StateEnv), os.Stdout))
}
