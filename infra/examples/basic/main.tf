# A complete keyguard deployment in one region, using the module in ../../modules/keyguard.
# See docs/deploy.md.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    ibm = {
      source  = "IBM-Cloud/ibm"
      version = ">= 2.3.0, < 3.0.0"
    }
  }
}

provider "ibm" {
  ibmcloud_api_key = var.ibmcloud_api_key
  region           = var.region
}

data "ibm_resource_group" "keyguard" {
  name = var.resource_group
}

module "keyguard" {
  source = "../../modules/keyguard"

  prefix            = var.prefix
  region            = var.region
  resource_group_id = data.ibm_resource_group.keyguard.id

  images     = var.images
  auth_token = var.auth_token

  bucket_name                  = var.bucket_name
  bucket_cross_region_location = var.bucket_cross_region_location
  archive_lock_days            = var.archive_lock_days
  fleet_file                   = var.fleet_file

  existing_kms_key_crn = var.existing_kms_key_crn
  managed_rotation     = var.managed_rotation

  db2_instance_crns            = var.db2_instance_crns
  create_db2_kms_authorization = var.create_db2_kms_authorization
  db2saas_url                  = var.db2saas_url

  cloud_logs_instance_crn = var.cloud_logs_instance_crn

  # Alerts by email: critical and warning alerts to these addresses (each confirms an
  # invitation from Event Notifications first). Slack, a webhook or PagerDuty: see
  # docs/deploy.md.
  alert_email = { recipients = var.alert_emails }
}
