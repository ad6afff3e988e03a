package config

// Environment variables read by the functions' mains (never by shared packages). The Terraform
// checks in infra/ read this list, so a name the code reads is a name the deployment sets.
const (
	EnvPort           = "PORT"                      // HTTP port of a Code Engine app
	EnvAuthToken      = "KEYGUARD_AUTH_TOKEN"       // shared bearer secret every request carries (secret)
	EnvLogLevel       = "KEYGUARD_LOG_LEVEL"        // debug, info, warn, error
	EnvIAMURL         = "KEYGUARD_IAM_URL"          // IAM base URL (token endpoint is <url>/identity/token)
	EnvAPIKey         = "KEYGUARD_API_KEY"          // IBM Cloud API key (secret); empty with a trusted profile
	EnvTrustedProfile = "KEYGUARD_TRUSTED_PROFILE"  // Code Engine trusted profile name (instead of an API key)
	EnvCOSEndpoint    = "KEYGUARD_COS_ENDPOINT"     // COS S3 endpoint URL
	EnvCOSRegion      = "KEYGUARD_COS_REGION"       // COS signing region
	EnvCOSBucket      = "KEYGUARD_COS_BUCKET"       // bucket for state, catalog, images, config
	EnvCOSPrefix      = "KEYGUARD_COS_PREFIX"       // optional key prefix inside the bucket
	EnvCOSInstanceCRN = "KEYGUARD_COS_INSTANCE_CRN" // COS service instance CRN (IAM auth)
	EnvCOSHMACKey     = "KEYGUARD_COS_HMAC_KEY_ID"  // HMAC access key id (instead of IAM)
	EnvCOSHMACSecret  = "KEYGUARD_COS_HMAC_SECRET"  // HMAC secret access key (secret)
	EnvENURL          = "KEYGUARD_EN_URL"           // Event Notifications API URL
	EnvENInstanceID   = "KEYGUARD_EN_INSTANCE_ID"   // Event Notifications instance GUID
	EnvENSourceID     = "KEYGUARD_EN_SOURCE_ID"     // API source id keyguard publishes under
	EnvKPURL          = "KEYGUARD_KP_URL"           // Key Protect API URL
	EnvKPInstanceID   = "KEYGUARD_KP_INSTANCE_ID"   // Key Protect instance GUID
	EnvFleetFile      = "KEYGUARD_FLEET_FILE"       // local fleet policy file (instead of COS)
	EnvFleetKey       = "KEYGUARD_FLEET_KEY"        // fleet policy object key in COS (default config/fleet.yaml)
	EnvCEProjectID    = "KEYGUARD_CE_PROJECT_ID"    // Code Engine project id (runner job starts)
	EnvCERegion       = "KEYGUARD_CE_REGION"        // Code Engine region
	EnvCERunnerJob    = "KEYGUARD_CE_RUNNER_JOB"    // Code Engine job name of the runner
	EnvDb2SaaSURL     = "KEYGUARD_DB2SAAS_URL"      // Db2 on Cloud REST base URL (…/dbapi/v4)
	// EnvRunnerPoll and EnvRunnerDatabases configure the runner as an agent on a Db2 host (not a
	// Code Engine job, so Terraform does not set them): poll interval, and the comma-separated
	// databases the host serves (all db2cli databases with runner: host when empty).
	EnvRunnerPoll      = "KEYGUARD_RUNNER_POLL"
	EnvRunnerDatabases = "KEYGUARD_RUNNER_DATABASES"
	// EnvRunID is set per job run by the scheduler (not by Terraform), beside the event in ibmendata.
	EnvRunID = "KEYGUARD_RUN_ID"
	// EnvCEURL is read by operator commands only (keyguard preflight): the Code Engine API URL,
	// when it is not the one KEYGUARD_CE_REGION names (the local stack's emulator).
	EnvCEURL = "KEYGUARD_CE_URL"
)

// FunctionEnv lists, per function, the variables its main reads. Terraform must set each one
// (PORT is set by Code Engine itself on apps).
var FunctionEnv = map[string][]string{
	"scheduler":  {EnvAuthToken, EnvLogLevel, EnvIAMURL, EnvAPIKey, EnvTrustedProfile, EnvCOSEndpoint, EnvCOSRegion, EnvCOSBucket, EnvCOSPrefix, EnvCOSInstanceCRN, EnvENURL, EnvENInstanceID, EnvENSourceID, EnvKPURL, EnvKPInstanceID, EnvFleetKey, EnvCEProjectID, EnvCERegion, EnvCERunnerJob, EnvDb2SaaSURL},
	"rotation":   {EnvAuthToken, EnvLogLevel, EnvIAMURL, EnvAPIKey, EnvTrustedProfile, EnvCOSEndpoint, EnvCOSRegion, EnvCOSBucket, EnvCOSPrefix, EnvCOSInstanceCRN, EnvENURL, EnvENInstanceID, EnvENSourceID, EnvKPURL, EnvKPInstanceID, EnvFleetKey},
	"runner":     {EnvLogLevel, EnvIAMURL, EnvAPIKey, EnvTrustedProfile, EnvCOSEndpoint, EnvCOSRegion, EnvCOSBucket, EnvCOSPrefix, EnvCOSInstanceCRN, EnvENURL, EnvENInstanceID, EnvENSourceID, EnvFleetKey, EnvKPURL, EnvKPInstanceID},
	"restore":    {EnvLogLevel, EnvIAMURL, EnvAPIKey, EnvTrustedProfile, EnvCOSEndpoint, EnvCOSRegion, EnvCOSBucket, EnvCOSPrefix, EnvCOSInstanceCRN, EnvENURL, EnvENInstanceID, EnvENSourceID, EnvFleetKey, EnvKPURL, EnvKPInstanceID},
	"completion": {EnvAuthToken, EnvLogLevel, EnvIAMURL, EnvAPIKey, EnvTrustedProfile, EnvCOSEndpoint, EnvCOSRegion, EnvCOSBucket, EnvCOSPrefix, EnvCOSInstanceCRN, EnvENURL, EnvENInstanceID, EnvENSourceID, EnvFleetKey},
}
