# Inputs of the keyguard module. Everything with a default can be left alone for a first
# deployment; docs/deploy.md walks through the required ones.

# ---------------------------------------------------------------------------------------------
# Placement and naming
# ---------------------------------------------------------------------------------------------

variable "prefix" {
  description = "Prefix of every resource name (Code Engine names must be lowercase and start with a letter)."
  type        = string
  default     = "keyguard"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.prefix))
    error_message = "The prefix must be 1-24 characters of lowercase letters, digits and '-', starting with a letter."
  }
}

variable "region" {
  description = "IBM Cloud region of Code Engine, Event Notifications, Key Protect and the regional bucket. Must equal the provider's region (Code Engine projects are created in the provider's region)."
  type        = string
}

variable "resource_group_id" {
  description = "ID of the resource group every service instance is created in."
  type        = string
}

variable "tags" {
  description = "Tags added to the service instances."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------------------------------------
# Container images and credentials of the functions
# ---------------------------------------------------------------------------------------------

variable "images" {
  description = "Image reference of each function (scheduler, rotation, completion, runner, restore), preferably pinned by digest."
  type        = map(string)

  validation {
    condition     = alltrue([for fn in ["scheduler", "rotation", "completion", "runner", "restore"] : contains(keys(var.images), fn)])
    error_message = "The images map needs an entry for scheduler, rotation, completion, runner and restore."
  }
}

variable "registry" {
  description = "Private registry the images are pulled from (server and user name); null for public images."
  type = object({
    server   = string
    username = string
  })
  default = null
}

variable "registry_password" {
  description = "Password or API key for the private registry (used only when registry is set)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "auth_token" {
  description = "Shared bearer secret: Event Notifications sends it as a sensitive Authorization header and every function rejects requests without it. At least 32 characters."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.auth_token) >= 32
    error_message = "The auth_token must be at least 32 characters long."
  }
}

variable "api_key" {
  description = "IBM Cloud API key the functions authenticate with. Leave empty (recommended) to use the trusted profile this module creates; a key's identity needs the same access as the trusted profile, which this module does not grant."
  type        = string
  default     = ""
  sensitive   = true
}

variable "cos_hmac" {
  description = "HMAC credentials for COS instead of IAM (access key id; the secret goes in cos_hmac_secret). null uses IAM."
  type = object({
    access_key_id = string
  })
  default = null
}

variable "cos_hmac_secret" {
  description = "HMAC secret access key, used only when cos_hmac is set."
  type        = string
  default     = ""
  sensitive   = true
}

variable "iam_url" {
  description = "IAM base URL the functions use (the token endpoint is <url>/identity/token)."
  type        = string
  default     = "https://iam.cloud.ibm.com"
}

variable "log_level" {
  description = "Log level of every function: debug, info, warn or error."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "The log_level must be debug, info, warn or error."
  }
}

# ---------------------------------------------------------------------------------------------
# Code Engine
# ---------------------------------------------------------------------------------------------

variable "db2saas_url" {
  description = "Db2 on Cloud REST base URL, for databases whose fleet policy executor is db2saas (self-managed db2cli databases run in the runner job)."
  type        = string
  default     = "https://us-south.db2.saas.ibm.com/dbapi/v4"

  validation {
    condition     = can(regex("^https://[^ ]+/dbapi/v4$", var.db2saas_url))
    error_message = "The db2saas_url must be an https URL ending in /dbapi/v4."
  }
}

variable "tick_interval_minutes" {
  description = "Minutes between scheduler ticks from the Event Notifications periodic timer."
  type        = number
  default     = 5

  validation {
    condition     = contains([1, 2, 3, 5, 10, 15, 20, 30], var.tick_interval_minutes)
    error_message = "The tick_interval_minutes must divide an hour: 1, 2, 3, 5, 10, 15, 20 or 30."
  }
}

variable "tick_starts_at" {
  description = "Optional start time of the periodic-timer schedule (RFC 3339), for Event Notifications instances that require one."
  type        = string
  default     = null
}

variable "app_min_instances" {
  description = "Instances each function app keeps running. At least 1: Event Notifications gives up after about 10 s, so a cold start must not lose events."
  type        = number
  default     = 1

  validation {
    condition     = var.app_min_instances >= 1
    error_message = "The app_min_instances must be at least 1 (no scale to zero)."
  }
}

variable "app_max_instances" {
  description = "Upper bound of instances per function app."
  type        = number
  default     = 3
}

variable "scheduler_max_instances" {
  description = "Upper bound of scheduler instances: a fleet above 5,000 databases is ticked in shards of 5,000 (tick.shard events), each delivered to an instance Code Engine scales out to."
  type        = number
  default     = 10
}

variable "app_concurrency" {
  description = "Requests one app instance handles at once before Code Engine adds an instance (each tick shard keeps one instance busy for up to 6 s)."
  type        = number
  default     = 4
}

variable "app_request_timeout_seconds" {
  description = "Time a function app may take to answer one request."
  type        = number
  default     = 120
}

variable "app_cpu" {
  description = "vCPU per app instance (a valid Code Engine CPU/memory combination with app_memory)."
  type        = string
  default     = "0.25"
}

variable "app_memory" {
  description = "Memory per app instance."
  type        = string
  default     = "0.5G"
}

variable "runner_timeout_seconds" {
  description = "Maximum duration of one backup job run (Code Engine allows up to 86400)."
  type        = number
  default     = 28800

  validation {
    condition     = var.runner_timeout_seconds >= 60 && var.runner_timeout_seconds <= 86400
    error_message = "The runner_timeout_seconds must be between 60 and 86400."
  }
}

variable "runner_retry_limit" {
  description = "Code Engine reruns of a failed runner instance. 0 by default: keyguard retries backups itself, with backoff and outside rotation windows."
  type        = number
  default     = 0

  validation {
    condition     = var.runner_retry_limit >= 0 && var.runner_retry_limit <= 5
    error_message = "The runner_retry_limit must be between 0 and 5."
  }
}

variable "restore_timeout_seconds" {
  description = "Maximum duration of one restore job run."
  type        = number
  default     = 28800

  validation {
    condition     = var.restore_timeout_seconds >= 60 && var.restore_timeout_seconds <= 86400
    error_message = "The restore_timeout_seconds must be between 60 and 86400."
  }
}

variable "restore_retry_limit" {
  description = "Code Engine reruns of a failed restore instance (0: a restore is never rerun blindly)."
  type        = number
  default     = 0

  validation {
    condition     = var.restore_retry_limit >= 0 && var.restore_retry_limit <= 5
    error_message = "The restore_retry_limit must be between 0 and 5."
  }
}

variable "job_cpu" {
  description = "vCPU per runner or restore job instance."
  type        = string
  default     = "1"
}

variable "job_memory" {
  description = "Memory per runner or restore job instance."
  type        = string
  default     = "4G"
}

variable "job_ephemeral_storage" {
  description = "Ephemeral storage per job instance (local image staging)."
  type        = string
  default     = "4G"
}

# ---------------------------------------------------------------------------------------------
# Key Protect
# ---------------------------------------------------------------------------------------------

variable "existing_kms_key_crn" {
  description = "CRN of an existing Key Protect root key to protect the bucket with (for example the key of your Db2 instances). null creates a Key Protect instance and a root key."
  type        = string
  default     = null

  validation {
    condition     = var.existing_kms_key_crn == null || can(regex("^crn:v1:[^:]+:[^:]+:kms:[^:]+:a/[^:]+:[^:]+:key:[^:]+$", var.existing_kms_key_crn))
    error_message = "The existing_kms_key_crn must be a Key Protect key CRN (crn:v1:...:kms:<region>:a/<account>:<instance>:key:<key id>)."
  }
}

variable "existing_kms_instance_guid" {
  description = "GUID of an existing Key Protect instance (in var.region) to create the root key in. Ignored when existing_kms_key_crn is set."
  type        = string
  default     = null
}

variable "kms_private_endpoint" {
  description = "Let the functions call Key Protect on its private endpoint."
  type        = bool
  default     = false
}

variable "managed_rotation" {
  description = "keyguard rotates the root key this module creates itself, coordinated with backups: no Key Protect rotation policy is set on it. Which keys keyguard may rotate is the fleet policy's business: the scheduler gets Writer on each key listed there with managed_rotation, Reader on the others."
  type        = bool
  default     = false
}

variable "key_rotation_interval_months" {
  description = "Months between automatic rotations of the created root key (when managed_rotation is false)."
  type        = number
  default     = 3

  validation {
    condition     = var.key_rotation_interval_months >= 1 && var.key_rotation_interval_months <= 12
    error_message = "The key_rotation_interval_months must be between 1 and 12."
  }
}

# ---------------------------------------------------------------------------------------------
# Db2
# ---------------------------------------------------------------------------------------------

variable "db2_instance_crns" {
  description = "CRNs of the Db2 on Cloud (dashdb-for-transactions) instances keyguard backs up. The functions get the Operator role on each (the role that may start a backup)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for crn in var.db2_instance_crns : can(regex("^crn:v1:[^:]+:[^:]+:dashdb-for-transactions:[^:]+:a/[^:]+:[^:]+::$", crn))])
    error_message = "Each db2_instance_crns entry must be a dashdb-for-transactions instance CRN."
  }
}

variable "create_db2_kms_authorization" {
  description = "Create the dashdb-for-transactions -> kms Reader authorization for each Db2 instance. Set false when it already exists (it usually does when the instance was created with this key)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Object Storage
# ---------------------------------------------------------------------------------------------

variable "cos_plan" {
  description = "Plan of the Cloud Object Storage instance."
  type        = string
  default     = "standard"
}

variable "bucket_name" {
  description = "Name of the bucket holding state/, catalog/, images/ and config/ (globally unique). The failed-events bucket is named <bucket_name>-failed-events, the archive <bucket_name>-archive."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,47}[a-z0-9]$", var.bucket_name))
    error_message = "The bucket_name must be 3-49 lowercase letters, digits, '.' and '-' (room for the -failed-events and -archive suffixes)."
  }
}

variable "bucket_cross_region_location" {
  description = "Cross-region location of the bucket (us, eu or ap); null keeps the bucket in var.region."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_cross_region_location == null || contains(["us", "eu", "ap"], coalesce(var.bucket_cross_region_location, "none"))
    error_message = "The bucket_cross_region_location must be us, eu, ap or null."
  }
}

variable "bucket_storage_class" {
  description = "Storage class of the bucket."
  type        = string
  default     = "smart"
}

variable "cos_endpoint_type" {
  description = "COS endpoint the functions use: public, private or direct."
  type        = string
  default     = "public"

  validation {
    condition     = contains(["public", "private", "direct"], var.cos_endpoint_type)
    error_message = "The cos_endpoint_type must be public, private or direct."
  }
}

variable "cos_prefix" {
  description = "Key prefix inside the bucket (empty: state/, catalog/ ... at the root)."
  type        = string
  default     = ""
}

variable "noncurrent_version_days" {
  description = "Days a noncurrent object version (an overwritten state object) is kept before it expires."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "The noncurrent_version_days must be at least 1."
  }
}

variable "archive_lock_days" {
  description = "Object Lock retention, in days, of the archive bucket (<bucket_name>-archive), which receives a copy of every image and catalog entry; 0: no archive. The keyguard bucket itself is never locked: its state objects are rewritten on every decision."
  type        = number
  default     = 0

  validation {
    condition     = var.archive_lock_days >= 0 && var.archive_lock_days <= 36500
    error_message = "The archive_lock_days must be between 0 and 36500."
  }
}

variable "archive_lock_mode" {
  description = "Object Lock mode of the archive: COMPLIANCE (no one can shorten or remove the retention) or GOVERNANCE (an account user with the bypass permission can). The functions have no access to the archive in either mode."
  type        = string
  default     = "COMPLIANCE"

  validation {
    condition     = contains(["GOVERNANCE", "COMPLIANCE"], var.archive_lock_mode)
    error_message = "The archive_lock_mode must be GOVERNANCE or COMPLIANCE."
  }
}

variable "archive_expire_days" {
  description = "Days after which replicas in the archive expire (at least archive_lock_days, at most 3650); 0 keeps them."
  type        = number
  default     = 0

  validation {
    condition     = var.archive_expire_days >= 0 && var.archive_expire_days <= 3650
    error_message = "The archive_expire_days must be between 0 and 3650."
  }
}

variable "archive_storage_class" {
  description = "Storage class of the archive bucket."
  type        = string
  default     = "smart"
}

variable "fleet_file" {
  description = "Path of the fleet policy YAML uploaded to config/fleet.yaml in the bucket. Terraform also reads it: the scheduler's Key Protect access is scoped to the root keys it names."
  type        = string
}

# ---------------------------------------------------------------------------------------------
# Event Notifications
# ---------------------------------------------------------------------------------------------

variable "en_plan" {
  description = "Plan of the Event Notifications instance (standard: Code Engine destinations and failed-event collection)."
  type        = string
  default     = "standard"
}

variable "en_private_endpoint" {
  description = "Let the functions call Event Notifications on its private endpoint."
  type        = bool
  default     = false
}

variable "en_store_notifications" {
  description = "Let Event Notifications keep the payloads of keyguard's notifications for troubleshooting (the source's store_notifications setting)."
  type        = bool
  default     = false
}

variable "collect_failed_events" {
  description = "Store notifications Event Notifications could not deliver in a separate, Key Protect encrypted bucket."
  type        = bool
  default     = true
}

variable "cloud_logs_instance_crn" {
  description = "CRN of an IBM Cloud Logs instance whose alerts on kms.secrets.rotate / kms.secrets-event.ack should reach the rotation function (a second path besides polling). null: no Cloud Logs source."
  type        = string
  default     = null

  validation {
    condition     = var.cloud_logs_instance_crn == null || can(regex("^crn:v1:[^:]+:[^:]+:logs:[^:]+:a/[^:]+:[^:]+::$", var.cloud_logs_instance_crn))
    error_message = "The cloud_logs_instance_crn must be an IBM Cloud Logs instance CRN."
  }
}

variable "cloud_logs_notification_filter" {
  description = "Optional Event Notifications notification filter on Cloud Logs alerts, for example $.data.alert_definition.name == 'keyguard-key-rotated'."
  type        = string
  default     = ""
}

# ---------------------------------------------------------------------------------------------
# Alert destinations (at least one): dev.keyguard.alert by severity (critical, warning, info)
# ---------------------------------------------------------------------------------------------

variable "alert_email" {
  description = "Email alerts through Event Notifications' own email destination: the recipients (each confirms an invitation first) and the severities they get."
  type = object({
    recipients = list(string)
    severities = optional(list(string), ["critical", "warning"])
  })
  default = null

  validation {
    condition = var.alert_email == null || (
      length(try(var.alert_email.recipients, [])) > 0 &&
      alltrue([for r in try(var.alert_email.recipients, []) : can(regex("^[^@ ]+@[^@ ]+$", r))]) &&
      length(try(var.alert_email.severities, [])) > 0 &&
      alltrue([for s in try(var.alert_email.severities, []) : contains(["critical", "warning", "info"], s)])
    )
    error_message = "The alert_email needs at least one recipient address and severities among critical, warning and info."
  }
}

variable "alert_slack" {
  description = "Slack alerts through an incoming webhook (its URL in alert_slack_webhook_url): the severities the channel gets."
  type = object({
    severities = optional(list(string), ["critical", "warning"])
  })
  default = null

  validation {
    condition     = var.alert_slack == null || (length(try(var.alert_slack.severities, [])) > 0 && alltrue([for s in try(var.alert_slack.severities, []) : contains(["critical", "warning", "info"], s)]))
    error_message = "The alert_slack severities must be among critical, warning and info, at least one."
  }
}

variable "alert_slack_webhook_url" {
  description = "Slack incoming webhook URL (used with alert_slack)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "alert_webhook" {
  description = "Alerts posted to an HTTPS webhook (signed by Event Notifications; an Authorization header value may go in alert_webhook_authorization): its URL and the severities it gets."
  type = object({
    url        = string
    severities = optional(list(string), ["critical", "warning", "info"])
  })
  default = null

  validation {
    condition = var.alert_webhook == null || (
      can(regex("^https://", try(var.alert_webhook.url, ""))) &&
      length(try(var.alert_webhook.severities, [])) > 0 &&
      alltrue([for s in try(var.alert_webhook.severities, []) : contains(["critical", "warning", "info"], s)])
    )
    error_message = "The alert_webhook needs an https URL and severities among critical, warning and info."
  }
}

variable "alert_webhook_authorization" {
  description = "Value of an Authorization header sent to the alert webhook, as a sensitive header; empty sends none."
  type        = string
  default     = ""
  sensitive   = true
}

variable "alert_pagerduty" {
  description = "PagerDuty alerts (the integration key in alert_pagerduty_routing_key): the severities that page."
  type = object({
    severities = optional(list(string), ["critical"])
  })
  default = null

  validation {
    condition     = var.alert_pagerduty == null || (length(try(var.alert_pagerduty.severities, [])) > 0 && alltrue([for s in try(var.alert_pagerduty.severities, []) : contains(["critical", "warning", "info"], s)]))
    error_message = "The alert_pagerduty severities must be among critical, warning and info, at least one."
  }
}

variable "alert_pagerduty_routing_key" {
  description = "PagerDuty integration (routing) key of an Events API v2 integration (used with alert_pagerduty)."
  type        = string
  default     = ""
  sensitive   = true
}
