output "app_urls" {
  description = "Public URL of each function app."
  value       = { for fn, app in ibm_code_engine_app.fn : fn => app.endpoint }
}

output "job_names" {
  description = "Code Engine job name of the runner and the restore function."
  value       = { for fn, job in ibm_code_engine_job.fn : fn => job.name }
}

output "code_engine_project_id" {
  description = "ID of the Code Engine project."
  value       = ibm_code_engine_project.keyguard.project_id
}

output "bucket_name" {
  description = "Bucket holding state/, catalog/, images/ and config/."
  value       = ibm_cos_bucket.state.bucket_name
}

output "bucket_crn" {
  description = "CRN of the bucket."
  value       = ibm_cos_bucket.state.crn
}

output "cos_endpoint" {
  description = "COS endpoint the functions use."
  value       = local.cos_endpoint
}

output "archive_bucket_name" {
  description = "Bucket under Object Lock with a copy of every image and catalog entry (null without an archive)."
  value       = local.archive ? ibm_cos_bucket.archive[0].bucket_name : null
}

output "fleet_object_key" {
  description = "Object key of the fleet policy."
  value       = ibm_cos_bucket_object.fleet.key
}

output "failed_events_bucket_name" {
  description = "Bucket with notifications Event Notifications could not deliver (null when not collected)."
  value       = var.collect_failed_events ? ibm_cos_bucket.failed_events[0].bucket_name : null
}

output "en_instance_id" {
  description = "GUID of the Event Notifications instance."
  value       = ibm_resource_instance.en.guid
}

output "en_source_id" {
  description = "ID of the API source keyguard publishes under."
  value       = ibm_en_source.keyguard.source_id
}

output "en_topic_ids" {
  description = "Topic ID of each route."
  value       = local.topic_ids
}

output "alert_topic_ids" {
  description = "Topic ID of the alerts of each severity (critical, warning, info), for subscriptions added outside this module."
  value       = { for sev, t in ibm_en_topic.alerts : sev => t.topic_id }
}

output "kms_instance_id" {
  description = "GUID of the Key Protect instance."
  value       = local.kms_instance_guid
}

output "kms_key_crn" {
  description = "CRN of the root key that protects the bucket."
  value       = local.kms_key_crn
}

output "object_roles" {
  description = "Display names of the custom Object Storage roles: objects (read, list, write) and delete. Grant objects, on the bucket, to a runner agent's service ID."
  value = {
    objects = ibm_iam_custom_role.objects.display_name
    delete  = ibm_iam_custom_role.object_delete.display_name
  }
}

output "trusted_profile_ids" {
  description = "ID of each function's trusted profile."
  value       = { for fn, p in ibm_iam_trusted_profile.fn : fn => p.id }
}

output "operator_env" {
  description = "Environment of keyguard's operator command and preflight (the scheduler's variables, without secrets or trusted profile): export them, with KEYGUARD_API_KEY."
  value = merge(
    { for k, v in local.common_env : k => v if !contains(["KEYGUARD_API_KEY", "KEYGUARD_COS_HMAC_SECRET", "KEYGUARD_LOG_LEVEL"], k) },
    local.kms_env,
    local.executor_env,
  )
}
