// Package cosgate stands in front of an S3 server (versitygw) for the two things IBM Cloud
// Object Storage adds that the preflight checks and versitygw lacks, so that the real
// ibm-cos-sdk-go client meets them on loopback:
//
//   - Key Protect encryption: HeadBucket of the bucket answers the ibm-sse-kp-enabled and
//     ibm-sse-kp-customer-root-key-crn headers of the root key it is given (versitygw does not
//     implement IBM's Key Protect extensions, so a recording of them is the honest stand-in);
//   - IAM access: requests that match a deny rule are refused with 403 AccessDenied before they
//     reach the server, as Object Storage refuses an action the caller's role does not hold.
//     DenyBucketConfiguration models keyguard's custom roles (no bucket configuration writes);
//     a test adds rules to take away more (e.g. PutObject under a prefix).
//
// Everything else is proxied unchanged, the Host header included, so request signatures made
// for the gate's address verify at the server. A Gate is an http.Handler, safe for concurrent
// use; Start runs one on a loopback listener.
package cosgate
