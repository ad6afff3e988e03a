package check

import (
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// arguments lists, per resource type, the argument and block paths the configuration may set:
// each one was checked against the IBM provider's documentation and schema (v1.88 and later).
// Nested paths are dotted; a block is marked with "{}". Meta-arguments are always allowed.
// A new argument goes here after it has been checked the same way.
var arguments = map[string][]string{
	"data.ibm_resource_group": {
		"name",
	},
	"data.ibm_en_sources": {
		"instance_guid",
	},
	"ibm_code_engine_app": {
		"image_port", "image_reference", "image_secret", "name", "probe_readiness.path",
		"probe_readiness.port", "probe_readiness.type", "probe_readiness{}", "project_id", "run_as_user",
		"run_compute_resource_token_enabled", "run_env_variables.key", "run_env_variables.name",
		"run_env_variables.reference", "run_env_variables.type", "run_env_variables.value",
		"run_env_variables{}", "scale_cpu_limit", "scale_max_instances", "scale_memory_limit",
		"scale_min_instances", "scale_request_timeout",
	},
	"ibm_code_engine_job": {
		"image_reference", "image_secret", "name", "project_id", "run_as_user",
		"run_compute_resource_token_enabled", "run_env_variables.key", "run_env_variables.name",
		"run_env_variables.reference", "run_env_variables.type", "run_env_variables.value",
		"run_env_variables{}", "run_mode", "scale_array_spec", "scale_cpu_limit",
		"scale_ephemeral_storage_limit", "scale_max_execution_time", "scale_memory_limit",
		"scale_retry_limit",
	},
	"ibm_code_engine_project": {
		"name", "resource_group_id",
	},
	"ibm_code_engine_secret": {
		"data", "format", "name", "project_id",
	},
	"ibm_cos_bucket": {
		"bucket_name", "cross_region_location", "force_delete", "kms_key_crn", "object_lock",
		"object_versioning.enable", "object_versioning{}", "region_location", "resource_instance_id",
		"storage_class",
	},
	"ibm_cos_bucket_lifecycle_configuration": {
		"bucket_crn", "bucket_location", "lifecycle_rule.filter.prefix", "lifecycle_rule.filter{}",
		"lifecycle_rule.noncurrent_version_expiration.noncurrent_days",
		"lifecycle_rule.noncurrent_version_expiration{}", "lifecycle_rule.rule_id",
		"lifecycle_rule.status", "lifecycle_rule{}",
	},
	"ibm_cos_bucket_object": {
		"bucket_crn", "bucket_location", "content_file", "etag", "key",
	},
	"ibm_cos_bucket_object_lock_configuration": {
		"bucket_crn", "bucket_location", "object_lock_configuration.object_lock_enabled",
		"object_lock_configuration.object_lock_rule.default_retention.days",
		"object_lock_configuration.object_lock_rule.default_retention.mode",
		"object_lock_configuration.object_lock_rule.default_retention{}",
		"object_lock_configuration.object_lock_rule{}", "object_lock_configuration{}",
	},
	"ibm_en_destination_ce": {
		"collect_failed_events", "config.params.custom_headers", "config.params.job_name",
		"config.params.project_crn", "config.params.sensitive_headers", "config.params.type",
		"config.params.url", "config.params.verb", "config.params{}", "config{}", "description",
		"instance_guid", "name", "type",
	},
	"ibm_en_integration_cos": {
		"instance_guid", "metadata.bucket_name", "metadata.crn", "metadata.endpoint", "metadata{}", "type",
	},
	"ibm_en_source": {
		"description", "enabled", "instance_guid", "name",
	},
	"ibm_en_subscription_ce": {
		"description", "destination_id", "instance_guid", "name", "topic_id",
	},
	"ibm_en_topic": {
		"description", "instance_guid", "name", "sources.id", "sources.rules.enabled",
		"sources.rules.event_schedule_filter.expression", "sources.rules.event_schedule_filter.starts_at",
		"sources.rules.event_schedule_filter{}", "sources.rules.event_type_filter",
		"sources.rules.notification_filter", "sources.rules{}", "sources{}",
	},
	"ibm_iam_authorization_policy": {
		"description", "resource_attributes.name", "resource_attributes.value", "resource_attributes{}",
		"roles", "source_resource_instance_id", "source_service_name", "subject_attributes.name",
		"subject_attributes.value", "subject_attributes{}", "target_resource_instance_id",
		"target_service_name",
	},
	"ibm_iam_trusted_profile": {
		"description", "name",
	},
	"ibm_iam_trusted_profile_link": {
		"cr_type", "link.component_name", "link.component_type", "link.crn", "link{}", "name",
		"profile_id",
	},
	"ibm_iam_trusted_profile_policy": {
		"description", "iam_id", "resources.resource", "resources.resource_instance_id",
		"resources.resource_type", "resources.service", "resources{}", "roles",
	},
	"ibm_kms_key": {
		"description", "force_delete", "instance_id", "key_name", "standard_key",
	},
	"ibm_kms_key_policies": {
		"instance_id", "key_id", "rotation.enabled", "rotation.interval_month", "rotation{}",
	},
	"ibm_logs_outgoing_webhook": {
		"instance_id", "region", "name", "type", "ibm_event_notifications{}",
		"ibm_event_notifications.event_notifications_instance_id", "ibm_event_notifications.region_id",
	},
	"ibm_resource_instance": {
		"location", "name", "plan", "resource_group_id", "service", "tags",
	},
}

// metaArgs are Terraform's own arguments of a resource block.
var metaArgs = map[string]bool{"count": true, "for_each": true, "depends_on": true, "provider": true, "lifecycle{}": true}

// Arguments checks that every argument and nested block a resource or data source sets is one
// listed in arguments for its type: a misspelt or undocumented argument fails here instead of
// at terraform plan.
func Arguments(m *Module) []string {
	var p []string
	for _, r := range m.Resources {
		key := r.Type
		if r.Data {
			key = "data." + r.Type
		}
		known, ok := arguments[key]
		if !ok {
			p = append(p, fmt.Sprintf("%s: resource type %s has no checked argument list", r.Addr(), key))
			continue
		}
		allowed := map[string]bool{}
		for _, a := range known {
			allowed[a] = true
		}
		for _, path := range argumentPaths("", r.Block.Body) {
			if !allowed[path] && !metaArgs[path] {
				p = append(p, fmt.Sprintf("%s: %s is not a checked argument of %s", r.Addr(), path, key))
			}
		}
	}
	sort.Strings(p)
	return p
}

// argumentPaths lists the attribute and block paths of a body; dynamic blocks count as the
// blocks they generate.
func argumentPaths(prefix string, b *hclsyntax.Body) []string {
	var out []string
	for name := range b.Attributes {
		out = append(out, prefix+name)
	}
	for _, blk := range b.Blocks {
		switch {
		case blk.Type == "lifecycle" && prefix == "":
			out = append(out, "lifecycle{}")
		case blk.Type == "dynamic" && len(blk.Labels) == 1:
			out = append(out, prefix+blk.Labels[0]+"{}")
			for _, c := range blk.Body.Blocks {
				if c.Type == "content" {
					out = append(out, argumentPaths(prefix+blk.Labels[0]+".", c.Body)...)
				}
			}
		default:
			out = append(out, prefix+blk.Type+"{}")
			out = append(out, argumentPaths(prefix+blk.Type+".", blk.Body)...)
		}
	}
	return out
}
