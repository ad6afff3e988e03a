// Package objstore is keyguard's narrow view of an object store: get, conditional put, delete and
// list of small objects (state, catalog entries, configuration) under one bucket and key prefix.
//
// Store is the interface; NewCOS adapts an ibm-cos-sdk-go client (IBM COS, or any S3-compatible
// server such as versitygw) and NewMemory is an in-memory store with the same conditional
// semantics for unit tests. NewCOSClient builds the SDK client from Options (HMAC or API key).
// DeleteMany removes many keys at once: with S3 DeleteObjects (1,000 keys a request) when the
// store is a BatchDeleter (COS and Memory are), else one Delete at a time.
//
// Errors are classified, never logged: ErrNotFound (no such key), ErrPrecondition (a conditional
// put lost: HTTP 412), ErrInvalidKey, and IsTransient reports errors worth retrying later
// (5xx, throttling, timeouts, broken connections). The contract every implementation keeps is the
// suite in objstore/objstoretest.
package objstore
