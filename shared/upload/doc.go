// Package upload streams backup images between a local reader and IBM Cloud Object Storage (or
// any S3-compatible server) and checksums them on the way: Upload sends a stream of known or
// unknown size as a multipart upload, computing its SHA-256 while reading, and returns the
// Object (key, size, checksum) that goes into the catalog; Download and Verify read an object
// back as a stream and check it.
//
// Memory stays the same whatever the image size. UploadFile reads each part from the file in
// place (a section of it, which the SDK reads once to sign the part and once to send it) while
// one sequential pass computes the file's SHA-256 alongside: a few buffers of a few hundred
// KiB, and a 1 GiB image uploads within a process peak of 32 MiB (BenchmarkUploadFile1GiB).
// Upload, for a stream that cannot be read twice (of unknown size, such as the keystore
// archive), copies it into at most Concurrency+1 part buffers of PartSize bytes (default 5 x 16
// MiB). A stream or file that fits in one part is sent as a single PUT. Each part is signed
// with its own SHA-256 (SigV4 payload hash), so the server rejects a part damaged in transit.
//
// Create-only: by default an upload never replaces an object. It first looks for the key
// (HEAD), and the final write carries If-None-Match: * (on PutObject, or on
// CompleteMultipartUpload, which AWS S3 and versitygw honour; IBM's documentation does not say
// whether COS honours it there, so the HEAD and the catalog's own create-only entry are the
// guarantee that matters). Uploading the same bytes again to a key that holds them succeeds
// (an idempotent retry: the stored object is re-read and its checksum compared); different
// bytes fail with ErrExists. Options.Overwrite turns this off.
//
// Errors: a failed upload aborts its multipart upload, so no parts are left behind to be billed
// (unless the abort itself fails: the error then names the upload id). Errors wrap
// objstore.ErrNotFound for a missing object and are marked transient (objstore.IsTransient) when
// retrying later may succeed.
//
// Encryption: in IBM COS, Key Protect / Hyper Protect Crypto Services encryption is a bucket
// setting (ibm-sse-kp-encryption-algorithm and ibm-sse-kp-customer-root-key-crn exist only on
// bucket creation in ibm-cos-sdk-go v1.14.1); every object written to such a bucket is
// encrypted with its root key, and that is the main path. BucketEncryption reports it (HEAD
// bucket). Per object, the SDK supports only x-amz-server-side-encryption (Options.
// ServerSideEncryption, "AES256"); SSE-C is deliberately not offered, since a lost customer key
// would make the image unrestorable.
//
// Progress: an Upload or Download still running after Options.ProgressEvery (30 s by default)
// logs a line at INFO with the bytes moved, the total when known, the rate and the time left,
// and again at that interval until it ends; Progress and Report are the same count for callers
// that draw their own progress bar.
//
// Users: the backup runner uploads local images and keystores (UploadFile) and verifies them
// before writing the catalog entry; restore and audit read them back. Uploader is safe for
// concurrent use.
package upload
