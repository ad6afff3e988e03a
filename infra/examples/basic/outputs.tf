output "app_urls" {
  description = "Public URL of each function app."
  value       = module.keyguard.app_urls
}

output "job_names" {
  description = "Code Engine job names of the runner and the restore function."
  value       = module.keyguard.job_names
}

output "code_engine_project_id" {
  description = "Code Engine project ID."
  value       = module.keyguard.code_engine_project_id
}

output "bucket_name" {
  description = "keyguard bucket."
  value       = module.keyguard.bucket_name
}

output "fleet_object_key" {
  description = "Object key of the fleet policy."
  value       = module.keyguard.fleet_object_key
}

output "en_instance_id" {
  description = "Event Notifications instance GUID."
  value       = module.keyguard.en_instance_id
}

output "en_source_id" {
  description = "Event Notifications API source of keyguard's events."
  value       = module.keyguard.en_source_id
}

output "kms_key_crn" {
  description = "Root key protecting the bucket."
  value       = module.keyguard.kms_key_crn
}

output "object_roles" {
  description = "Custom Object Storage roles (for a runner agent on a Db2 host)."
  value       = module.keyguard.object_roles
}

output "archive_bucket_name" {
  description = "Archive bucket under Object Lock (null without one)."
  value       = module.keyguard.archive_bucket_name
}

output "operator_env" {
  description = "Environment of keyguard's operator command and preflight: export them, with KEYGUARD_API_KEY (make cloud-test does)."
  value       = module.keyguard.operator_env
}

output "failed_events_bucket_name" {
  description = "Bucket of undelivered notifications (null when not collected); make cloud-test empties it before destroy."
  value       = module.keyguard.failed_events_bucket_name
}
