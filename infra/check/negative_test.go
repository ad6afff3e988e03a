package check

import (
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// Each case breaks the real module in one way and expects one check to say so.
func TestChecksFail(t *testing.T) {
	const (
		app       = "ibm_code_engine_app.fn"
		job       = "ibm_code_engine_job.fn"
		events    = "ibm_en_topic.events"
		tick      = "ibm_en_topic.tick"
		appDest   = "ibm_en_destination_ce.app"
		jobDest   = "ibm_en_destination_ce.job"
		appSub    = "ibm_en_subscription_ce.app"
		state     = "ibm_cos_bucket.state"
		failedBkt = "ibm_cos_bucket.failed_events"
		policy    = "ibm_iam_trusted_profile_policy.fn"
	)
	cases := []struct {
		name    string
		profile profile
		check   func(*Eval) []string
		mutate  func(t *testing.T, m *Module)
		want    string
	}{
		// Functions
		{"app missing", minimal(), Functions, func(t *testing.T, m *Module) {
			setLocal(t, m, "apps", `toset(["scheduler", "rotation"])`)
		}, "function completion has no ibm_code_engine_app"},
		{"job missing", minimal(), Functions, func(t *testing.T, m *Module) {
			setLocal(t, m, "jobs", `toset(["runner"])`)
		}, "function restore has no ibm_code_engine_job"},
		{"unknown function", minimal(), Functions, func(t *testing.T, m *Module) {
			setLocal(t, m, "apps", `toset(["scheduler", "rotation", "completion", "janitor"])`)
		}, `runs "janitor", which is not a function`},
		{"app scales to zero", minimal(), Functions, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, app), "scale_min_instances", "0")
		}, "scale_min_instances is 0, must be at least 1"},
		{"app min instances unset", minimal(), Functions, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, app), "scale_min_instances")
		}, "scale_min_instances is not set"},
		{"job without retry limit", minimal(), Functions, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, job), "scale_retry_limit")
		}, "scale_retry_limit is not set"},
		{"job without timeout", minimal(), Functions, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, job), "scale_max_execution_time", "100000")
		}, "scale_max_execution_time must be a known number in [1, 86400]"},
		{"job as daemon", minimal(), Functions, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, job), "run_mode", `"daemon"`)
		}, "run_mode must be task"},

		// Environment
		{"env var missing", minimal(), Env, func(t *testing.T, m *Module) {
			setLocal(t, m, "literal_env", `{
				scheduler  = merge(local.common_env, local.kms_env, local.executor_env)
				rotation   = local.common_env
				completion = local.common_env
				runner     = local.common_env
				restore    = local.common_env
			}`)
		}, "rotation reads KEYGUARD_KP_URL, which is not set"},
		{"auth token as literal", minimal(), Env, func(t *testing.T, m *Module) {
			setLocal(t, m, "secret_env", `{}`)
			setLocal(t, m, "unused_secret_env", `{ KEYGUARD_AUTH_TOKEN = "plain", KEYGUARD_API_KEY = "", KEYGUARD_COS_HMAC_SECRET = "" }`)
		}, "KEYGUARD_AUTH_TOKEN: a credential must come from a secret"},
		{"api key as literal", full(), Env, func(t *testing.T, m *Module) {
			setLocal(t, m, "secret_env", `{ KEYGUARD_AUTH_TOKEN = "auth-token", KEYGUARD_COS_HMAC_SECRET = "cos-hmac-secret" }`)
			setLocal(t, m, "unused_secret_env", `{ KEYGUARD_API_KEY = var.api_key }`)
		}, "KEYGUARD_API_KEY: a credential must come from a secret"},
		{"secret key absent", minimal(), Env, func(t *testing.T, m *Module) {
			setLocal(t, m, "secret_data", `{ "other" = var.auth_token }`)
		}, `key "auth-token" is not in the data of ibm_code_engine_secret.env`},
		{"variable set twice", minimal(), Env, func(t *testing.T, m *Module) {
			setLocal(t, m, "unused_secret_env", `{ KEYGUARD_AUTH_TOKEN = "", KEYGUARD_API_KEY = "", KEYGUARD_COS_HMAC_SECRET = "" }`)
		}, "KEYGUARD_AUTH_TOKEN is set twice"},
		{"PORT set on an app", minimal(), Env, func(t *testing.T, m *Module) {
			setLocal(t, m, "kms_env", `{ KEYGUARD_KP_URL = "u", KEYGUARD_KP_INSTANCE_ID = "i", PORT = "8080" }`)
		}, "sets PORT, which Code Engine sets"},
		{"no compute resource token", minimal(), Env, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, app), "run_compute_resource_token_enabled")
		}, "uses a trusted profile but run_compute_resource_token_enabled is not true"},

		// Routes
		{"type not admitted", minimal(), Routes, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, events, "sources", "dynamic:rules"), "for_each", `[for x in each.value.types : x if x != "dev.keyguard.backup.failed"]`)
		}, "no rule admits dev.keyguard.backup.failed"},
		{"extra type admitted", minimal(), Routes, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, events, "sources", "dynamic:rules"), "for_each", `concat(each.value.types, ["dev.keyguard.alert"])`)
		}, "admits dev.keyguard.alert, which the route does not take"},
		{"catch-all filter on keyguard's source", minimal(), Routes, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, events, "sources", "dynamic:rules", "content"), "event_type_filter", `"$.*"`)
		}, `event_type_filter "$.*" on keyguard's source`},
		{"subscription to the wrong destination", minimal(), Routes, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, appSub), "destination_id", `ibm_en_destination_ce.app["tick"].destination_id`)
		}, "route rotation app /events dev.keyguard.key.rotated,dev.keyguard.key.state_changed,dev.keyguard.preflight: no subscription"},
		{"subscription to nothing", minimal(), Routes, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, appSub), "topic_id", `"topic-id"`)
		}, "topic_id must be the topic_id of an ibm_en_topic"},
		{"url without path", minimal(), Routes, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, appDest, "config", "params"), "url", `ibm_code_engine_app.fn[each.value.function].endpoint`)
		}, "route scheduler app /tick (periodic): no subscription"},
		{"url not an app", minimal(), Routes, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, appDest, "config", "params"), "url", `"https://example.com/events"`)
		}, "url must be an app's endpoint"},
		{"secret header not sensitive", minimal(), Routes, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, appDest, "config", "params"), "sensitive_headers")
		}, "sensitive_headers must list Authorization"},
		{"no shared secret header", minimal(), Routes, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, appDest, "config", "params"), "custom_headers", `{ Authorization = "" }`)
		}, "custom_headers must carry"},
		{"destination not Code Engine", minimal(), Routes, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, appDest), "type", `"webhook"`)
		}, `type must be "ibmce"`},
		{"periodic topic without schedule", minimal(), Routes, func(t *testing.T, m *Module) {
			delBlocks(t, body(t, m, tick, "sources", "rules"), "event_schedule_filter")
		}, "route scheduler app /tick (periodic): no subscription joins a matching topic to a destination delivering to it (ibm_en_subscription_ce.app[\"tick\"] via ibm_en_topic.tick: no periodic-timer source with a schedule)"},
		{"tick from a foreign source", minimal(), Routes, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, tick, "sources"), "id", `"some-source"`)
		}, "is not keyguard's, the periodic timer or Cloud Logs"},
		{"cloud logs alerts not routed", full(), Routes, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, events, "dynamic:sources"), "for_each", `[]`)
		}, "a Cloud Logs instance is configured but its alerts do not reach this topic"},
		{"cloud logs alerts to the wrong function", full(), Routes, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, events, "dynamic:sources"), "for_each", `[var.cloud_logs_instance_crn]`)
		}, "takes Cloud Logs alerts the route does not expect"},
		{"restore routed to the runner", minimal(), Routes, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, jobDest, "config", "params"), "job_name", `ibm_code_engine_job.fn["runner"].name`)
		}, "route restore job dev.keyguard.restore.requested,dev.keyguard.preflight: no subscription"},

		// IAM
		{"Manager on Key Protect", minimal(), IAM, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, policy), "roles", `each.value.service == "kms" ? ["Manager"] : each.value.roles`)
		}, `grants "Manager"`},
		{"Administrator in an authorization", minimal(), IAM, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_iam_authorization_policy.cos_kms"), "roles", `["Reader", "Administrator"]`)
		}, `grants "Administrator"`},
		{"Writer on a key keyguard does not rotate", minimal(), Access, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, policy), "roles", `each.value.service == "kms" ? ["Writer"] : each.value.roles`)
		}, "scheduler is granted [Writer] on kms (5f1e2d3c-0000-4000-8000-00000000aaaa key 0b1c2d3e-0000-4000-8000-00000000b001), want [Reader]"},
		{"Reader on a key keyguard rotates", full(), Access, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, policy), "roles", `each.value.service == "kms" ? ["Reader"] : each.value.roles`)
		}, "scheduler is granted [Reader] on kms (5f1e2d3c-0000-4000-8000-00000000aaaa key 0b1c2d3e-0000-4000-8000-00000000b002), want [Writer]"},
		{"Key Protect access to the whole instance", minimal(), Access, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, policy, "resources"), "resource_type", `each.value.service == "kms" ? null : each.value.resource_type`)
			setAttr(t, body(t, m, policy, "resources"), "resource", `each.value.service == "kms" ? null : each.value.resource`)
		}, "scheduler is granted [Reader] on kms (5f1e2d3c-0000-4000-8000-00000000aaaa), which its code does not use"},
		{"wildcard instance", minimal(), IAM, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, policy, "resources"), "resource_instance_id", `each.value.service == "codeengine" ? "*" : each.value.instance`)
		}, "resource_instance_id must name one instance (no wildcard)"},
		{"no instance", minimal(), IAM, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, policy, "resources"), "resource_instance_id", `each.value.service == "event-notifications" ? null : each.value.instance`)
		}, `ibm_iam_trusted_profile_policy.fn["completion/publish"].resources[0]: resource_instance_id must name one instance`},
		{"COS not scoped to the bucket", minimal(), IAM, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, policy, "resources"), "resource", `each.value.service == "cloud-object-storage" ? null : each.value.resource`)
		}, "a cloud-object-storage grant must be scoped to one bucket"},
		{"policy without resources", minimal(), IAM, func(t *testing.T, m *Module) {
			delBlocks(t, body(t, m, policy), "resources")
		}, "no resources: the policy would cover every service"},
		{"account management", minimal(), IAM, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, policy), "account_management", "true")
		}, "account_management grants every account management service"},
		{"authorization to a whole service", minimal(), IAM, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, "ibm_iam_authorization_policy.cos_kms"), "target_resource_instance_id")
		}, "ibm_iam_authorization_policy.cos_kms: the target must be one named service instance"},
		{"authorization from a whole service", minimal(), IAM, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, "ibm_iam_authorization_policy.en_codeengine"), "source_resource_instance_id")
		}, "ibm_iam_authorization_policy.en_codeengine: the source must be one named service instance"},
		{"authorization attribute wildcard", minimal(), IAM, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_iam_authorization_policy.en_cos_failed_events", "resource_attributes#4"), "value", `"*"`)
		}, "resource must name one thing (no wildcard)"},
		{"authorization attribute pattern", minimal(), IAM, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_iam_authorization_policy.en_cos_failed_events", "resource_attributes#4"), "operator", `"stringMatch"`)
		}, "operator must be stringEquals"},
		{"grant on an unused service", minimal(), Access, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, policy, "resources"), "service", `each.value.service == "event-notifications" ? "secrets-manager" : each.value.service`)
		}, "rotation is granted [Event Notification Publisher] on secrets-manager"},
		{"Db2 grant missing", full(), Access, func(t *testing.T, m *Module) {
			overrideLocal(t, m, "function_access", `merge(%s, { scheduler = merge(%s.scheduler, { db2_backups = false }) })`)
		}, "scheduler needs [Operator] on dashdb-for-transactions (7a1b2c3d-0000-4000-8000-000000000001), which its trusted profile does not hold"},
		{"Db2 authorization missing", full(), IAM, func(t *testing.T, m *Module) {
			delResource(t, m, "ibm_iam_authorization_policy.db2_kms")
		}, "want 2 dashdb-for-transactions -> kms Reader authorization(s), found 0"},
		{"Event Notifications cannot reach Code Engine", minimal(), IAM, func(t *testing.T, m *Module) {
			delResource(t, m, "ibm_iam_authorization_policy.en_codeengine")
		}, "want one event-notifications -> codeengine Viewer+Writer authorization"},
		{"Cloud Logs cannot reach Event Notifications", full(), IAM, func(t *testing.T, m *Module) {
			delResource(t, m, "ibm_iam_authorization_policy.logs_en")
		}, "want 1 logs -> event-notifications Event Source Manager authorization(s), found 0"},
		{"COS cannot use the key", minimal(), IAM, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_iam_authorization_policy.cos_kms"), "roles", `["Viewer"]`)
		}, "want one cloud-object-storage -> kms Reader authorization"},
		{"role named as the documentation's heading", minimal(), IAM, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, policy), "roles", `each.value.service == "event-notifications" ? ["Event Notifications Publisher"] : each.value.roles`)
		}, `"Event Notifications Publisher" is not a role IAM defines for event-notifications`},
		{"role of another service", minimal(), IAM, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_iam_authorization_policy.cos_kms"), "roles", `["Object Writer"]`)
		}, `"Object Writer" is not a role IAM defines for kms`},
		{"failed events without Reader", minimal(), IAM, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_iam_authorization_policy.en_cos_failed_events"), "roles", `["Object Writer"]`)
		}, "want 1 event-notifications -> cloud-object-storage Object Writer+Reader authorization(s)"},
		{"job not linked to the profile", minimal(), Access, func(t *testing.T, m *Module) {
			delResource(t, m, "ibm_iam_trusted_profile_link.job")
		}, `ibm_code_engine_job.fn["runner"] is not linked to the trusted profile of runner`},
		{"link with the wrong component type", minimal(), Access, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_iam_trusted_profile_link.job", "link"), "component_type", `"application"`)
		}, `component_type "application" does not match`},

		// Least privilege per function
		{"one profile for every app", minimal(), Access, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_iam_trusted_profile_link.app"), "profile_id", `ibm_iam_trusted_profile.fn["scheduler"].id`)
		}, `links ibm_code_engine_app.fn["completion"] (function completion) to the profile of scheduler`},
		{"a function authenticates as another", minimal(), Access, func(t *testing.T, m *Module) {
			setLocal(t, m, "profile_env", `{ for fn in local.functions : fn => { KEYGUARD_TRUSTED_PROFILE = ibm_iam_trusted_profile.fn["scheduler"].name } }`)
		}, `ibm_code_engine_app.fn["completion"]: KEYGUARD_TRUSTED_PROFILE must be the name of ibm_iam_trusted_profile.fn["completion"]`},
		{"function without a profile", minimal(), Access, func(t *testing.T, m *Module) {
			setForEach(t, m, "ibm_iam_trusted_profile.fn", `setsubtract(local.functions, ["restore"])`)
			setLocal(t, m, "profile_env", `{ for fn in local.functions : fn => { KEYGUARD_TRUSTED_PROFILE = "" } }`)
		}, "function restore has no trusted profile of its own"},
		{"completion starts job runs", minimal(), Access, func(t *testing.T, m *Module) {
			overrideLocal(t, m, "function_access", `merge(%s, { completion = merge(%s.completion, { job_runs = true }) })`)
		}, "completion is granted [Writer] on codeengine («ibm_code_engine_project.keyguard.project_id»), which its code does not use"},
		{"restore operates Db2", full(), Access, func(t *testing.T, m *Module) {
			overrideLocal(t, m, "function_access", `merge(%s, { restore = merge(%s.restore, { db2_backups = true }) })`)
		}, "restore is granted [Operator] on dashdb-for-transactions (7a1b2c3d-0000-4000-8000-000000000001), which its code does not use"},
		{"rotation reads the keys", minimal(), Access, func(t *testing.T, m *Module) {
			overrideLocal(t, m, "function_access", `merge(%s, { rotation = merge(%s.rotation, { keys = true }) })`)
		}, "rotation is granted [Reader] on kms (5f1e2d3c-0000-4000-8000-00000000aaaa key 0b1c2d3e-0000-4000-8000-00000000b001), which its code does not use"},
		{"restore may delete objects", minimal(), Access, func(t *testing.T, m *Module) {
			overrideLocal(t, m, "function_access", `merge(%s, { restore = merge(%s.restore, { delete = true }) })`)
		}, "restore is granted [custom:objects custom:delete] on cloud-object-storage («ibm_resource_instance.cos.guid» bucket «ibm_cos_bucket.state.bucket_name»), want [custom:objects]"},
		{"runner cannot delete archived logs", minimal(), Access, func(t *testing.T, m *Module) {
			overrideLocal(t, m, "function_access", `merge(%s, { runner = merge(%s.runner, { delete = false }) })`)
		}, "runner is granted [custom:objects] on cloud-object-storage («ibm_resource_instance.cos.guid» bucket «ibm_cos_bucket.state.bucket_name»), want [custom:objects custom:delete]"},
		{"completion cannot delete", minimal(), Access, func(t *testing.T, m *Module) {
			overrideLocal(t, m, "function_access", `merge(%s, { completion = merge(%s.completion, { delete = false }) })`)
		}, "completion is granted [custom:objects] on cloud-object-storage («ibm_resource_instance.cos.guid» bucket «ibm_cos_bucket.state.bucket_name»), want [custom:objects custom:delete]"},
		{"built-in Writer on the bucket", minimal(), Access, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, policy), "roles", `each.value.service == "cloud-object-storage" ? ["Writer"] : each.value.roles`)
		}, "runner is granted [Writer] on cloud-object-storage"},
		{"custom role may change Object Lock", minimal(), Access, func(t *testing.T, m *Module) {
			overrideLocal(t, m, "cos_object_actions", `concat(%s, ["cloud-object-storage.bucket.put_object_lock_configuration"])`)
		}, "ibm_iam_custom_role.objects: grants cloud-object-storage.bucket.put_object_lock_configuration, which keyguard's code never calls"},
		{"custom role may bypass governance retention", minimal(), Access, func(t *testing.T, m *Module) {
			overrideLocal(t, m, "cos_delete_actions", `["cloud-object-storage.object.delete", "cloud-object-storage.object.bypass_governance_retention"]`)
		}, "ibm_iam_custom_role.object_delete: grants cloud-object-storage.object.bypass_governance_retention"},
		{"custom role lacks an operation", minimal(), Access, func(t *testing.T, m *Module) {
			overrideLocal(t, m, "cos_object_actions", `[for a in %s : a if a != "cloud-object-storage.object.put_part"]`)
		}, "ibm_iam_custom_role.objects: actions"},

		// Buckets
		{"bucket without key", minimal(), Buckets, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, state), "kms_key_crn")
		}, "ibm_cos_bucket.state: no kms_key_crn"},
		{"failed-events bucket without key", minimal(), Buckets, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, failedBkt), "kms_key_crn")
		}, "ibm_cos_bucket.failed_events[0]: no kms_key_crn"},
		{"bucket with a key that is not a key", minimal(), Buckets, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, state), "kms_key_crn", `"crn:v1:bluemix:public:cloud-object-storage:global:a/x:y::"`)
		}, "is not a root key CRN"},

		// Provider schema (infra/check/schema_ibm.go, read from provider v2.3.0 to v2.5.0)
		{"required argument missing", minimal(), Schema, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, "ibm_en_source.keyguard"), "store_notifications")
		}, "ibm_en_source.keyguard: argument store_notifications is required by ibm_en_source"},
		{"required argument null", minimal(), Schema, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_en_source.keyguard"), "store_notifications", "null")
		}, "argument store_notifications is required"},
		{"required nested argument missing", minimal(), Schema, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, tick, "sources"), "id")
		}, "ibm_en_topic.tick.sources[0]: argument sources.id is required"},
		{"required block missing", minimal(), Schema, func(t *testing.T, m *Module) {
			delBlocks(t, body(t, m, "ibm_iam_trusted_profile_link.job"), "link")
		}, "block link is required by ibm_iam_trusted_profile_link"},
		{"value not allowed", minimal(), Schema, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, state), "storage_class", `"premium"`)
		}, `storage_class is "premium", not one of standard, vault, cold, smart, flex, onerate_active`},
		{"value does not match the pattern", minimal(), Schema, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, app), "name", `"Keyguard_${each.key}"`)
		}, `name is "Keyguard_completion", which does not match`},
		{"number out of range", minimal(), Schema, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, app), "image_port", "70000")
		}, "image_port is 70000, outside [0, 65535]"},
		{"conflicting arguments", minimal(), Schema, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, state), "key_protect", "local.kms_key_crn")
		}, "key_protect and kms_key_crn conflict"},
		{"block repeated beyond its limit", minimal(), Schema, func(t *testing.T, m *Module) {
			b := body(t, m, state)
			b.Blocks = append(b.Blocks, b.Blocks[0])
		}, "object_versioning appears 2 times, at most 1 allowed"},
		{"none of a required group", minimal(), Schema, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, "ibm_iam_authorization_policy.cos_kms"), "source_service_name")
		}, "at least one of source_resource_group_id, source_service_name, subject_attributes must be set"},

		// Waiting for IAM authorizations to propagate
		{"bucket right after its authorization", minimal(), Waits, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, state), "depends_on", `[ibm_iam_authorization_policy.cos_kms]`)
		}, "ibm_cos_bucket.state depends on ibm_iam_authorization_policy.cos_kms directly"},
		{"bucket without a wait", minimal(), Waits, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, state), "depends_on")
		}, "ibm_cos_bucket.state is created without waiting for the cloud-object-storage -> kms authorization"},
		{"destination waits for the wrong authorization", minimal(), Waits, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, appDest), "depends_on", `[time_sleep.cos_kms]`)
		}, `ibm_en_destination_ce.app["tick"] is created without waiting for the event-notifications -> codeengine authorization`},
		{"failed-events integration without a wait", minimal(), Waits, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, "ibm_en_integration_cos.failed_events"), "depends_on")
		}, "ibm_en_integration_cos.failed_events[0] is created without waiting for the event-notifications -> cloud-object-storage authorization"},
		{"Cloud Logs integration without a wait", full(), Waits, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, "ibm_logs_outgoing_webhook.en"), "depends_on")
		}, "ibm_logs_outgoing_webhook.en[0] is created without waiting for the logs -> event-notifications authorization"},
		{"wait too short", minimal(), Waits, func(t *testing.T, m *Module) {
			setLocal(t, m, "iam_propagation_wait", `"5s"`)
		}, "time_sleep.cos_kms: create_duration must be a known duration of at least 30s"},

		// Alerts reach people
		{"a severity without a topic", minimal(), Alerts, func(t *testing.T, m *Module) {
			setForEach(t, m, "ibm_en_topic.alerts", `toset(["critical", "warning"])`)
		}, "no topic takes info alerts (dev.keyguard.alert)"},
		{"alert topic without a severity filter", minimal(), Alerts, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, "ibm_en_topic.alerts", "sources", "rules"), "notification_filter")
		}, "an alert rule must filter on one severity"},
		{"alert topic admitting another type", minimal(), Alerts, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_en_topic.alerts", "sources", "rules"), "event_type_filter", `"$.type == 'dev.keyguard.backup.failed'"`)
		}, "no topic takes critical alerts"},
		{"severity asked for but not subscribed", full(), Alerts, func(t *testing.T, m *Module) {
			setForEach(t, m, "ibm_en_subscription_email.alerts", `toset(["critical"])`)
		}, "alert_email asks for warning alerts, but no ibm_en_subscription_email subscribes to that topic"},
		{"subscribed to a severity not asked for", existingInstance(), Alerts, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_en_subscription_slack.alerts"), "topic_id", `ibm_en_topic.alerts["info"].topic_id`)
		}, "a ibm_en_subscription_slack subscribes to info alerts, which alert_slack does not ask for"},
		{"Slack subscription to the webhook", full(), Alerts, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_en_subscription_slack.alerts"), "destination_id", `ibm_en_destination_webhook.alerts[0].destination_id`)
		}, "destination_id must be the slack destination"},
		{"email subscription to another destination", full(), Alerts, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_en_subscription_email.alerts"), "destination_id", `"smtp"`)
		}, "destination_id must be the smtp_ibm destination"},
		{"destination of the wrong type", full(), Schema, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_en_destination_pagerduty.alerts"), "type", `"pager_duty"`)
		}, `type is "pager_duty", not one of pagerduty`},

		// Object Lock: an archive, never the functions' bucket
		{"functions' bucket under Object Lock", minimal(), Archive, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, state), "object_lock", "true")
		}, "ibm_cos_bucket.state: the functions' bucket must not use Object Lock"},
		{"lock configuration on the functions' bucket", full(), Archive, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_cos_bucket_object_lock_configuration.archive"), "bucket_crn", "ibm_cos_bucket.state.crn")
		}, "locks the functions' bucket, whose state objects must stay rewritable"},
		{"deletions reach the archive", full(), Archive, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_cos_bucket_replication_rule.archive", "dynamic:replication_rule", "content"), "deletemarker_replication_status", "true")
		}, "deletemarker_replication_status must be false"},
		{"state objects replicated", full(), Archive, func(t *testing.T, m *Module) {
			setLocal(t, m, "archive_prefixes", `{ images = { prefix = "${local.cos_key_prefix}images/", priority = 2 }, state = { prefix = "${local.cos_key_prefix}state/", priority = 1 } }`)
		}, "must replicate exactly [keyguard/catalog/ keyguard/images/] to the archive, replicates [keyguard/images/ keyguard/state/]"},
		{"prefix forgotten", full(), Archive, func(t *testing.T, m *Module) {
			setLocal(t, m, "archive_prefixes", `{ images = { prefix = "images/", priority = 2 }, catalog = { prefix = "catalog/", priority = 1 } }`)
		}, "replicates [catalog/ images/]"},
		{"archive not locked", full(), Archive, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, "ibm_cos_bucket.archive"), "object_lock")
		}, `ibm_cos_bucket.archive[0]: the archive bucket must be created with object_lock = true`},
		{"archive retention not the one asked for", full(), Archive, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_cos_bucket_object_lock_configuration.archive", "object_lock_configuration", "object_lock_rule", "default_retention"), "days", "1")
		}, "the archive's Object Lock must be Enabled with a default retention of 30 days in COMPLIANCE mode"},
		{"archive without replication", full(), Archive, func(t *testing.T, m *Module) {
			delResource(t, m, "ibm_cos_bucket_replication_rule.archive")
		}, "no replication rule reaches an archive bucket"},
		{"replication without its authorization", full(), IAM, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_iam_authorization_policy.cos_replication"), "roles", `["Writer"]`)
		}, "want 1 cloud-object-storage -> cloud-object-storage Object Writer authorization(s) (replication to the archive), found 0"},
		{"replication right after its authorization", full(), Waits, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_cos_bucket_replication_rule.archive"), "depends_on", `[ibm_cos_bucket_object_lock_configuration.archive]`)
		}, "ibm_cos_bucket_replication_rule.archive[0] is created without waiting for the cloud-object-storage -> cloud-object-storage authorization"},

		// Fleet policy
		{"fleet policy at another key", minimal(), Fleet, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_cos_bucket_object.fleet"), "key", `"fleet.yaml"`)
		}, "no ibm_cos_bucket_object uploads the fleet policy"},
		{"fleet policy ignores the prefix", full(), Fleet, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, "ibm_cos_bucket_object.fleet"), "key", `local.fleet_key`)
		}, "[keyguard/config/fleet.yaml]"},
		{"fleet policy inline", minimal(), Fleet, func(t *testing.T, m *Module) {
			delAttr(t, body(t, m, "ibm_cos_bucket_object.fleet"), "content_file")
		}, "must be uploaded from a file"},
		{"bucket not versioned", minimal(), Fleet, func(t *testing.T, m *Module) {
			setAttr(t, body(t, m, state, "object_versioning"), "enable", "false")
		}, "must have object_versioning enabled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The unmodified module passes this check with this profile ...
			if problems := c.check(baseline(t, c.profile)); len(problems) > 0 {
				t.Fatalf("unmodified module fails:\n%s", strings.Join(problems, "\n"))
			}
			// ... and the mutated one does not.
			m := loadModule(t)
			c.mutate(t, m)
			problems := c.check(evaluate(t, m, c.profile))
			for _, p := range problems {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Errorf("want a problem containing %q, got:\n%s", c.want, strings.Join(problems, "\n"))
		})
	}
}

// A lifecycle precondition that is known to fail stops the plan.
func TestPreconditionsFail(t *testing.T) {
	m := loadModule(t)
	euKey := strings.Replace(testKeyCRN, ":us-south:", ":eu-de:", 1)
	cases := []struct {
		name string
		p    profile
		want string
	}{
		{"cross-region bucket with a key elsewhere", full().with("existing_kms_key_crn", cty.StringVal(euKey)),
			"ibm_cos_bucket.state: precondition fails: A bucket in cross-region location us needs its root key in us-south, but the key is in eu-de"},
		{"created key outside the location serving the bucket", minimal().with("bucket_cross_region_location", cty.StringVal("eu")),
			"needs its root key in eu-de, but the key is in us-south"},
		{"no alert destination", minimal().with("alert_email", cty.NullVal(cty.DynamicPseudoType)),
			"ibm_en_topic.alerts[\"critical\"]: precondition fails: No alert destination is configured"},
		{"Slack without its webhook URL", existingInstance().with("alert_slack_webhook_url", cty.StringVal("")),
			"ibm_en_destination_slack.alerts[0]: precondition fails: alert_slack needs alert_slack_webhook_url"},
		{"archive replicas expiring while locked", full().with("archive_expire_days", cty.NumberIntVal(10)),
			"ibm_cos_bucket_lifecycle_configuration.archive[0]: precondition fails: archive_expire_days (10) must not be shorter than archive_lock_days (30)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(Preconditions(evaluate(t, m, c.p)), "\n")
			if !strings.Contains(got, c.want) {
				t.Errorf("Preconditions = %q, want %q", got, c.want)
			}
		})
	}
	silent := evaluate(t, m, minimal().with("alert_email", cty.NullVal(cty.DynamicPseudoType)))
	if got := strings.Join(Alerts(silent), "\n"); !strings.Contains(got, "dev.keyguard.alert reaches no one") {
		t.Errorf("Alerts without a destination = %q", got)
	}
	for _, p := range []profile{full(), existingInstance(), minimal().with("bucket_cross_region_location", cty.StringVal("us"))} {
		if got := Preconditions(evaluate(t, m, p)); len(got) > 0 {
			t.Errorf("%s: %v", p.name, got)
		}
	}
}

// Variable validations run before anything else: a bad input fails evaluation.
func TestEvaluateRejectsInputs(t *testing.T) {
	m := loadModule(t)
	cases := []struct {
		name string
		p    profile
		want string
	}{
		{"scale to zero", minimal().with("app_min_instances", cty.NumberIntVal(0)), "app_min_instances must be at least 1"},
		{"short secret", minimal().with("auth_token", cty.StringVal("short")), "at least 32 characters"},
		{"image missing", minimal().with("images", cty.MapVal(map[string]cty.Value{"scheduler": cty.StringVal("x")})), "needs an entry for scheduler"},
		{"not a key CRN", minimal().with("existing_kms_key_crn", cty.StringVal(testLogsCRN)), "must be a Key Protect key CRN"},
		{"not a Db2 CRN", minimal().with("db2_instance_crns", cty.ListVal([]cty.Value{cty.StringVal(testKeyCRN)})), "dashdb-for-transactions instance CRN"},
		{"bad cross-region location", minimal().with("bucket_cross_region_location", cty.StringVal("mars")), "must be us, eu, ap or null"},
		{"bad tick interval", minimal().with("tick_interval_minutes", cty.NumberIntVal(7)), "must divide an hour"},
		{"not a Cloud Logs CRN", minimal().with("cloud_logs_instance_crn", cty.StringVal(testKeyCRN)), "Cloud Logs instance CRN"},
		{"alert to an unknown severity", minimal().with("alert_pagerduty", cty.ObjectVal(map[string]cty.Value{"severities": cty.ListVal([]cty.Value{cty.StringVal("fatal")})})), "severities must be among critical, warning and info"},
		{"alert email without recipients", minimal().with("alert_email", cty.ObjectVal(map[string]cty.Value{"recipients": cty.ListValEmpty(cty.String)})), "needs at least one recipient"},
		{"alert webhook over http", minimal().with("alert_webhook", cty.ObjectVal(map[string]cty.Value{"url": cty.StringVal("http://example.com")})), "needs an https URL"},
		{"bucket name too long", minimal().with("bucket_name", cty.StringVal(strings.Repeat("b", 50))), "room for the -failed-events and -archive suffixes"},
		{"unknown input", minimal().with("no_such_variable", cty.True), "no such variable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Evaluate(m, c.p.inputs)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	in := minimal().inputs
	delete(in, "bucket_name")
	if _, err := Evaluate(m, in); err == nil || !strings.Contains(err.Error(), "bucket_name is required") {
		t.Errorf("missing required variable: err = %v", err)
	}
}
