# Cloud Object Storage: one bucket for state/, catalog/, images/ and config/, always encrypted
# with the Key Protect root key and versioned; optionally an archive bucket under Object Lock
# that receives a copy of every image and catalog entry.

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

  # keyguard preflight's receipts and probes, the last tick and the host agents' last polls
  # (shared/preflight): a day is enough to read them.
  lifecycle_rule {
    rule_id = "expire-preflight"
    status  = "enable"

    filter {
      prefix = "${local.cos_key_prefix}preflight/"
    }

    expiration {
      days = 1
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

# ---------------------------------------------------------------------------------------------
# Archive under Object Lock
#
# Object Lock applies to a whole bucket: its default retention has no prefix filter, so it
# cannot lock images/ and catalog/ while state/ stays rewritable (every compare-and-swap write
# of a state object would leave a locked version behind, and deleting a database's state would
# be impossible). Replication rules do filter by prefix: the keyguard bucket copies each new
# image and catalog entry into an archive bucket whose default retention locks it, and never
# copies deletions. The functions hold no access to the archive at all, so nothing they do, or
# anyone holding their credentials does, can shorten its protection; in COMPLIANCE mode no one
# can (ibm-cloud-docs/cloud-object-storage object-lock.md and replication.md).
# ---------------------------------------------------------------------------------------------

resource "ibm_cos_bucket" "archive" {
  count                 = local.archive ? 1 : 0
  bucket_name           = "${var.bucket_name}-archive"
  resource_instance_id  = ibm_resource_instance.cos.id
  region_location       = var.bucket_cross_region_location == null ? var.region : null
  cross_region_location = var.bucket_cross_region_location
  storage_class         = var.archive_storage_class
  kms_key_crn           = local.kms_key_crn
  object_lock           = true
  force_delete          = false

  object_versioning {
    enable = true
  }

  depends_on = [time_sleep.cos_kms]

  lifecycle {
    precondition {
      condition     = local.kms_key_fits_bucket
      error_message = local.kms_key_misfit
    }
  }
}

resource "ibm_cos_bucket_object_lock_configuration" "archive" {
  count           = local.archive ? 1 : 0
  bucket_crn      = ibm_cos_bucket.archive[0].crn
  bucket_location = local.bucket_location

  object_lock_configuration {
    object_lock_enabled = "Enabled"

    object_lock_rule {
      default_retention {
        mode = var.archive_lock_mode
        days = var.archive_lock_days
      }
    }
  }
}

# Replicas are kept archive_expire_days (at least the lock), then removed; 0 keeps them.
resource "ibm_cos_bucket_lifecycle_configuration" "archive" {
  count           = local.archive && var.archive_expire_days > 0 ? 1 : 0
  bucket_crn      = ibm_cos_bucket.archive[0].crn
  bucket_location = local.bucket_location

  lifecycle_rule {
    rule_id = "expire-replicas"
    status  = "enable"

    filter {
      prefix = ""
    }

    expiration {
      days = var.archive_expire_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  lifecycle {
    precondition {
      condition     = var.archive_expire_days >= var.archive_lock_days
      error_message = "archive_expire_days (${var.archive_expire_days}) must not be shorter than archive_lock_days (${var.archive_lock_days}): locked replicas cannot expire before their retention ends."
    }
  }
}

# The keyguard bucket may write replicas into the archive bucket, and nothing else.
resource "ibm_iam_authorization_policy" "cos_replication" {
  count       = local.archive ? 1 : 0
  roles       = [local.roles.cos_object_writer]
  description = "${var.prefix}: the keyguard bucket replicates images and catalog entries to its archive"

  subject_attributes {
    name  = "accountId"
    value = ibm_resource_instance.cos.account_id
  }
  subject_attributes {
    name  = "serviceName"
    value = "cloud-object-storage"
  }
  subject_attributes {
    name  = "serviceInstance"
    value = ibm_resource_instance.cos.guid
  }
  subject_attributes {
    name  = "resourceType"
    value = "bucket"
  }
  subject_attributes {
    name  = "resource"
    value = ibm_cos_bucket.state.bucket_name
  }

  resource_attributes {
    name  = "accountId"
    value = ibm_resource_instance.cos.account_id
  }
  resource_attributes {
    name  = "serviceName"
    value = "cloud-object-storage"
  }
  resource_attributes {
    name  = "serviceInstance"
    value = ibm_resource_instance.cos.guid
  }
  resource_attributes {
    name  = "resourceType"
    value = "bucket"
  }
  resource_attributes {
    name  = "resource"
    value = ibm_cos_bucket.archive[0].bucket_name
  }
}

resource "time_sleep" "cos_replication" {
  count           = local.archive ? 1 : 0
  create_duration = local.iam_propagation_wait
  triggers        = { authorization = ibm_iam_authorization_policy.cos_replication[0].id }
}

# One rule per protected prefix; deletions (retention) stay in the keyguard bucket.
resource "ibm_cos_bucket_replication_rule" "archive" {
  count           = local.archive ? 1 : 0
  bucket_crn      = ibm_cos_bucket.state.crn
  bucket_location = local.bucket_location

  dynamic "replication_rule" {
    for_each = local.archive_prefixes
    content {
      rule_id                         = replication_rule.key
      enable                          = true
      prefix                          = replication_rule.value.prefix
      priority                        = replication_rule.value.priority
      deletemarker_replication_status = false
      destination_bucket_crn          = ibm_cos_bucket.archive[0].crn
    }
  }

  depends_on = [time_sleep.cos_replication, ibm_cos_bucket_object_lock_configuration.archive]
}
