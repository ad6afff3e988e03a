// Package e2e runs the whole local stack (test/stack: versitygw, the Event Notifications and IAM
// emulators, the three functions over loopback HTTP, the simulated Db2) and checks the loop end to
// end, reading every state back from the S3 server.
package e2e
