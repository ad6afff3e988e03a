// Package objstoretest is the contract suite of objstore.Store. Every implementation runs it:
// the in-memory store and an in-process S3 fake in unit tests, versitygw through the real
// ibm-cos-sdk-go client in test/integration. Run never skips.
package objstoretest
