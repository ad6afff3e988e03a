# Cloud Object Storage: one bucket for state/, catalog/, images/ and config/, always encrypted
# with the Key Protect root key, versioned, optionally under Object Lock.

resource "ibm_resource_instance" "cos" {
  name              = "${var.prefix}-cos"
  service           = "cloud-object-storage"
  plan              = var.cos_plan
  location          = "global"
  resource_group_id = var.resource_group_id
  tags              = var.tags
}

resource "ibm_cos_bucket" "state" {
  bucket_name           = var.bucket_name
  resource_instance_id  = ibm_resource_instance.cos.id
  region_location       = var.bucket_cross_region_location == null ? var.region : null
  cross_region_location = var.bucket_cross_region_location
  storage_class         = var.bucket_storage_class
  kms_key_crn           = local.kms_key_crn
  object_lock           = var.object_lock_days > 0
  force_delete          = false

  object_versioning {
    enable = true
  }

  # COS must be allowed to use the key before the bucket can be created with it.
  depends_on = [time_sleep.cos_kms]

  lifecycle {
    precondition {
      condition     = local.kms_key_fits_bucket
      error_message = local.kms_key_misfit
    }
  }
}

# Every compare-and-swap write of a state object leaves a noncurrent version behind.
resource "ibm_cos_bucket_lifecycle_configuration" "state" {
  bucket_crn      = ibm_cos_bucket.state.crn
  bucket_location = local.bucket_location

  lifecycle_rule {
    rule_id = "expire-noncurrent-versions"
    status  = "enable"

    filter {
      prefix = ""
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
  }
}

resource "ibm_cos_bucket_object_lock_configuration" "state" {
  count           = var.object_lock_days > 0 ? 1 : 0
  bucket_crn      = ibm_cos_bucket.state.crn
  bucket_location = local.bucket_location

  object_lock_configuration {
    object_lock_enabled = "Enabled"

    object_lock_rule {
      default_retention {
        mode = var.object_lock_mode
        days = var.object_lock_days
      }
    }
  }
}

# The fleet policy, read by every function at config/fleet.yaml (under the prefix).
resource "ibm_cos_bucket_object" "fleet" {
  bucket_crn      = ibm_cos_bucket.state.crn
  bucket_location = local.bucket_location
  key             = "${local.cos_key_prefix}${local.fleet_key}"
  content_file    = var.fleet_file
  etag            = filemd5(var.fleet_file)
}

# Notifications Event Notifications could not deliver, kept for inspection. Encrypted with the
# same key; only Event Notifications writes here.
resource "ibm_cos_bucket" "failed_events" {
  count                 = var.collect_failed_events ? 1 : 0
  bucket_name           = "${var.bucket_name}-failed-events"
  resource_instance_id  = ibm_resource_instance.cos.id
  region_location       = var.bucket_cross_region_location == null ? var.region : null
  cross_region_location = var.bucket_cross_region_location
  storage_class         = var.bucket_storage_class
  kms_key_crn           = local.kms_key_crn
  force_delete          = false

  depends_on = [time_sleep.cos_kms]

  lifecycle {
    precondition {
      condition     = local.kms_key_fits_bucket
      error_message = local.kms_key_misfit
    }
  }
}
