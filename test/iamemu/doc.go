// Package iamemu is a small IBM Cloud IAM token endpoint for tests and the local stack.
//
// It answers POST /identity/token the way go-sdk-core's authenticators expect: for the API key
// grant (urn:ibm:params:oauth:grant-type:apikey, used by IamAuthenticator), the refresh-token
// grant, and the compute-resource-token grant (urn:ibm:params:oauth:grant-type:cr-token, used by
// ContainerAuthenticator for trusted profiles). A success carries access_token, refresh_token,
// token_type "Bearer", expires_in and expiration (unix seconds); without expiration go-sdk-core
// would fetch a new token on every call.
//
// Access tokens are JWT-shaped and HMAC-signed with a per-emulator random secret, so the other
// emulators (Event Notifications, Key Protect) that mount or share an Emulator can check an
// Authorization header with Valid without keeping a token table. Failures mimic IAM's JSON error
// body (errorCode, errorMessage) with 400 for a bad request or an unknown API key, as IAM does.
//
// Token lifetimes are judged by the injected clock (wall clock by default). go-sdk-core judges
// expiry by the wall clock, so a stack that runs on a fake clock should leave this one real.
//
// It also answers GET /v1/policies?account_id=...&type=authorization, the policy listing of IAM's
// policy management API that platform-services-go-sdk's iampolicymanagementv1 calls, with the
// service-to-service authorizations a test adds (AddAuthorization) or removes: subjects and
// resources as serviceName / serviceInstance / accountId attributes, roles with role_id and
// display_name, pages by limit and a start token. It needs a bearer token it issued (401) and an
// account_id (400). Access policies are not modelled: type=access lists nothing.
//
// An Emulator is safe for concurrent use. It binds nothing: mount it as an http.Handler.
package iamemu
