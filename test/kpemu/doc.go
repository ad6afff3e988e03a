// Package kpemu emulates the part of IBM Key Protect that keyguard uses, for tests and the local
// stack, closely enough that the real keyprotect-go-client (v0.17.3) talks to it unchanged.
//
// REST operations, under /api/v2 as the client calls them (paths in the Route* constants):
//   - GET keys/{id}/metadata (GetKeyMetadata) and GET keys/{id} (GetKey): the key in a collection
//     envelope {"metadata":{"collectionType","collectionTotal"},"resources":[key]}, with id, name,
//     crn, state (Key Protect's numbers: 0 pre-activation, 1 active, 2 suspended, 3 deactivated,
//     5 destroyed), creationDate, lastRotateDate (absent until the first rotation) and keyVersion
//     {id, creationDate} of the newest version. A destroyed key's metadata is still served (state
//     5, deleted true); GET keys/{id} of a destroyed key answers 410 KEY_DELETED_ERR.
//   - GET keys/{id}/versions (ListKeyVersions): every version, newest first, with limit (default
//     200, at most 5000), offset and totalCount.
//   - GET keys/{id}/policies?policy=rotation (GetRotationPolicy): the rotation policy as
//     {"rotation":{"enabled","interval_month"}}, or an empty collection when none is set.
//   - GET keys/{id}/registrations and GET keys/registrations (ListRegistrations): registrations
//     (resourceCrn, keyId, keyVersion {id, creationDate}, preventKeyDeletion, dates), with limit
//     (default 200, at most 5000), offset, totalCount and urlEncodedResourceCRNQuery (a CRN, or a
//     prefix ending in *).
//   - POST keys/{id}/actions/rotate|disable|enable: 204 on success. Rotate needs an active key
//     and is refused with 409 KEY_ROTATION_NOT_PERMITTED when the key was rotated (by any means)
//     less than an hour ago, as Key Protect documents ("Only one 'rotate' action per hour is
//     permitted"). Disable needs an active key, enable a suspended one (409
//     KEY_ACTION_INVALID_STATE_ERR otherwise); any action on a destroyed key answers 410.
//   - POST keys/{id}/actions/wrap and keys/{id}/actions/unwrap (Wrap, WrapV2, WrapCreateDEK,
//     UnwrapV2), with real cryptography: every key version has its own AES-256 key material;
//     wrap seals {"plaintext"} (base64, at most MaxWrapPlaintext bytes; a new 32-byte key, returned
//     as plaintext too, when absent) with AES-256-GCM under the newest version, binding the key id
//     and the request's "aad" list, and answers 200 {"ciphertext", "keyVersion": {id,
//     creationDate}}; unwrap opens {"ciphertext"} with the version it names (older versions keep
//     unwrapping after a rotation; nothing is re-wrapped) and answers {"plaintext", "keyVersion"}.
//     Both need an active key: 409 KEY_ACTION_INVALID_STATE_ERR for suspended, deactivated and
//     pre-activation keys, 410 for destroyed ones. A ciphertext of another key, changed, or given
//     with other AAD answers 422 UNPROCESSABLE_CIPHERTEXT_ERR (the emulator's choice of code).
//
// Every API request needs the header bluemix-instance equal to the instance id (400 when
// missing, 401 when another instance) and an Authorization bearer token issued by the IAM
// emulator mounted on the same handler at /identity/token (401 otherwise). Errors use Key
// Protect's body, {"metadata":{"collectionType":"application/vnd.ibm.kms.error+json",...},
// "resources":[{"errorMsg","reasons":[{"code","message","status","moreInfo"}]}]}, with the
// documented reason codes where Key Protect documents one; 404 answers use KEY_NOT_FOUND_ERR and
// a missing instance header MISSING_INSTANCE_ERR, which are this emulator's own choices.
//
// Test controls change the state directly: AddKey, Rotate (a server-side rotation, as a rotation
// policy would make; not rate limited but it counts for the hourly limit of the API),
// AddRegistration, SetRegistrationVersion (a registered resource such as a Db2 instance finished
// re-wrapping), SetState, SetRotationPolicy. FailNext makes the next API requests fail with a
// status, SetLatency delays every API request, Calls counts requests per route. Timestamps and
// the rotation limit follow the injected clock; latency is real time, and the IAM emulator always
// judges tokens by the wall clock, as go-sdk-core does.
//
// New builds an Emulator to mount on any listener (it is an http.Handler); Start runs one on a
// loopback httptest server for a test. An Emulator is safe for concurrent use.
package kpemu
