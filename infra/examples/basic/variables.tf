variable "ibmcloud_api_key" {
  description = "API key Terraform deploys with (not given to the functions)."
  type        = string
  sensitive   = true
}

variable "region" {
  description = "Region of the deployment, for example us-south."
  type        = string
}

variable "resource_group" {
  description = "Name of an existing resource group."
  type        = string
  default     = "Default"
}

variable "prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "keyguard"
}

variable "images" {
  description = "Image reference of each function (scheduler, rotation, completion, runner, restore)."
  type        = map(string)
}

variable "auth_token" {
  description = "Shared bearer secret of the functions (at least 32 characters, e.g. openssl rand -hex 32)."
  type        = string
  sensitive   = true
}

variable "bucket_name" {
  description = "Globally unique name of the keyguard bucket."
  type        = string
}

variable "bucket_cross_region_location" {
  description = "us, eu or ap for a cross-region bucket; null for a regional one."
  type        = string
  default     = null
}

variable "archive_lock_days" {
  description = "Object Lock retention in days of the archive bucket that keeps a copy of every image and catalog entry (0: no archive)."
  type        = number
  default     = 0
}

variable "fleet_file" {
  description = "Path of the fleet policy uploaded to config/fleet.yaml."
  type        = string
  default     = "fleet.yaml"
}

variable "existing_kms_key_crn" {
  description = "CRN of an existing root key (for example the one of your Db2 instances); null creates one."
  type        = string
  default     = null
}

variable "managed_rotation" {
  description = "keyguard rotates the key itself instead of a Key Protect rotation policy."
  type        = bool
  default     = false
}

variable "db2_instance_crns" {
  description = "CRNs of the Db2 on Cloud instances to back up."
  type        = list(string)
  default     = []
}

variable "create_db2_kms_authorization" {
  description = "Create the Db2 -> Key Protect authorization (false when it already exists)."
  type        = bool
  default     = true
}

variable "db2saas_url" {
  description = "Db2 on Cloud REST base URL (for fleet databases with executor db2saas)."
  type        = string
  default     = "https://us-south.db2.saas.ibm.com/dbapi/v4"
}

variable "cloud_logs_instance_crn" {
  description = "Cloud Logs instance whose key-rotation alerts reach the rotation function; null for none."
  type        = string
  default     = null
}

variable "alert_emails" {
  description = "Addresses that receive keyguard's critical and warning alerts by email."
  type        = list(string)
}
