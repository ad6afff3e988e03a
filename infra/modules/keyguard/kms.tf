# Key Protect: the root key that protects the bucket (and, usually, the Db2 instances).

resource "ibm_resource_instance" "kms" {
  count             = local.create_kms_instance ? 1 : 0
  name              = "${var.prefix}-kms"
  service           = "kms"
  plan              = "tiered-pricing"
  location          = var.region
  resource_group_id = var.resource_group_id
  tags              = var.tags
}

resource "ibm_kms_key" "root" {
  count        = local.create_kms_key ? 1 : 0
  instance_id  = local.create_kms_instance ? ibm_resource_instance.kms[0].guid : var.existing_kms_instance_guid
  key_name     = "${var.prefix}-root"
  description  = "keyguard root key: protects the backup bucket"
  standard_key = false
  force_delete = false
}

# Automatic rotation by Key Protect, unless keyguard rotates the key itself (managed_rotation).
# An existing key keeps whatever policy its owner gave it.
resource "ibm_kms_key_policies" "rotation" {
  count       = local.create_kms_key && !var.managed_rotation ? 1 : 0
  instance_id = ibm_kms_key.root[0].instance_id
  key_id      = ibm_kms_key.root[0].key_id

  rotation {
    enabled        = true
    interval_month = var.key_rotation_interval_months
  }
}
