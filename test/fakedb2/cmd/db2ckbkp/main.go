// Command db2ckbkp is keyguard's fake Db2 backup image checker for tests: it verifies images
// written by the fake db2 command; see package github.com/keyguard-dev/keyguard/test/fakedb2.
package main

import (
	"os"

	"github.com/keyguard-dev/keyguard/test/fakedb2/clp"
)

func main() {
	os.Exit(clp.Ckbkp(os.Args[1:], os.Stdout))
}
