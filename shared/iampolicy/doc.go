// Package iampolicy looks up IAM service-to-service authorization policies (Db2 -> Key Protect,
// Object Storage -> Key Protect, Event Notifications -> Code Engine) for the deployment
// preflight, through IBM's platform-services-go-sdk (iampolicymanagementv1, the v1 policies
// API: GET /v1/policies?account_id=...&type=authorization). Listing an account's authorizations
// needs Viewer on IAM Access Management, an operator's access: no function uses this package.
package iampolicy
