// Package cosconfig reads a bucket's configuration on IBM Cloud Object Storage for the
// deployment preflight: whether it exists and which Key Protect root key encrypts it
// (HeadBucket, which the functions' custom role allows), its versioning and Object Lock
// configuration, and, to prove an identity cannot change it, a write of the versioning status it
// already has. None of keyguard's functions configures a bucket: this is the preflight's alone,
// kept out of shared/objstore so that the functions' custom Object Storage roles (derived from
// objstore's calls in infra/check) never include these actions.
package cosconfig
