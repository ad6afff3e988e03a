# IAM. Service-to-service authorizations between instances, each followed by a wait; a trusted
# profile per function holding only what that function's code calls; custom Object Storage
# roles. No policy names a role above Writer/Operator, and every policy names its instance
# (and the bucket, or the key).

# ---------------------------------------------------------------------------------------------
# Service-to-service authorizations
#
# IAM takes a while to propagate a new authorization: a resource created right after the
# authorization it needs fails now and then (IBM-Cloud/terraform-provider-ibm issue #4478).
# Every authorization that a later resource needs is followed by a time_sleep, and that
# resource depends on the wait, never on the authorization itself (as IBM's own modules do).
# The wait is replaced, and waited again, whenever its authorization is.
# ---------------------------------------------------------------------------------------------

resource "ibm_iam_authorization_policy" "cos_kms" {
  source_service_name         = "cloud-object-storage"
  source_resource_instance_id = ibm_resource_instance.cos.guid
  target_service_name         = "kms"
  target_resource_instance_id = local.kms_instance_guid
  roles                       = [local.roles.kms_reader]
  description                 = "${var.prefix}: COS encrypts the bucket with the root key"
}

resource "time_sleep" "cos_kms" {
  create_duration = local.iam_propagation_wait
  triggers        = { authorization = ibm_iam_authorization_policy.cos_kms.id }
}

resource "ibm_iam_authorization_policy" "db2_kms" {
  for_each = var.create_db2_kms_authorization ? local.db2_instances : {}

  source_service_name         = "dashdb-for-transactions"
  source_resource_instance_id = each.key
  target_service_name         = "kms"
  target_resource_instance_id = local.kms_instance_guid
  roles                       = [local.roles.kms_reader]
  description                 = "${var.prefix}: Db2 instance ${each.key} uses the root key"
}

# Event Notifications starts job runs and calls apps in the project.
resource "ibm_iam_authorization_policy" "en_codeengine" {
  source_service_name         = "event-notifications"
  source_resource_instance_id = ibm_resource_instance.en.guid
  target_service_name         = "codeengine"
  target_resource_instance_id = ibm_code_engine_project.keyguard.project_id
  roles                       = [local.roles.ce_viewer, local.roles.ce_writer]
  description                 = "${var.prefix}: Event Notifications delivers to Code Engine"
}

resource "time_sleep" "en_codeengine" {
  create_duration = local.iam_propagation_wait
  triggers        = { authorization = ibm_iam_authorization_policy.en_codeengine.id }
}

# Cloud Logs registers itself as a source of the Event Notifications instance (its documented
# source integration role).
resource "ibm_iam_authorization_policy" "logs_en" {
  count                       = var.cloud_logs_instance_crn == null ? 0 : 1
  source_service_name         = "logs"
  source_resource_instance_id = split(":", var.cloud_logs_instance_crn)[7]
  target_service_name         = "event-notifications"
  target_resource_instance_id = ibm_resource_instance.en.guid
  roles                       = [local.roles.en_source_manager]
  description                 = "${var.prefix}: Cloud Logs alerts reach Event Notifications"
}

resource "time_sleep" "logs_en" {
  count           = var.cloud_logs_instance_crn == null ? 0 : 1
  create_duration = local.iam_propagation_wait
  triggers        = { authorization = ibm_iam_authorization_policy.logs_en[0].id }
}

# Event Notifications writes undelivered notifications to the failed-events bucket only. It
# needs Reader as well as Object Writer: with one of the two the integration fails
# (ibm-cloud-docs/event-notifications en-cfe-integrations.md).
resource "ibm_iam_authorization_policy" "en_cos_failed_events" {
  count       = var.collect_failed_events ? 1 : 0
  roles       = [local.roles.cos_reader, local.roles.cos_object_writer]
  description = "${var.prefix}: Event Notifications stores failed deliveries"

  subject_attributes {
    name  = "accountId"
    value = ibm_resource_instance.en.account_id
  }
  subject_attributes {
    name  = "serviceName"
    value = "event-notifications"
  }
  subject_attributes {
    name  = "serviceInstance"
    value = ibm_resource_instance.en.guid
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
    value = "${var.bucket_name}-failed-events"
  }
}

resource "time_sleep" "en_cos_failed_events" {
  count           = var.collect_failed_events ? 1 : 0
  create_duration = local.iam_propagation_wait
  triggers        = { authorization = ibm_iam_authorization_policy.en_cos_failed_events[0].id }
}

# ---------------------------------------------------------------------------------------------
# One trusted profile per function, holding only what that function's code calls
# (local.function_access; infra/check derives the same table from functions/*/main.go and
# fails when the two differ).
# ---------------------------------------------------------------------------------------------

resource "ibm_iam_trusted_profile" "fn" {
  for_each = local.functions

  name        = "${var.prefix}-${each.key}"
  description = "Identity of the keyguard ${each.key} function (Code Engine ${contains(local.apps, each.key) ? "app" : "job"})"
}

resource "ibm_iam_trusted_profile_link" "app" {
  for_each = local.apps

  profile_id = ibm_iam_trusted_profile.fn[each.key].id
  cr_type    = "CE"
  name       = local.names[each.key]

  link {
    crn            = ibm_code_engine_project.keyguard.crn
    component_type = "application"
    component_name = ibm_code_engine_app.fn[each.key].name
  }
}

resource "ibm_iam_trusted_profile_link" "job" {
  for_each = local.jobs

  profile_id = ibm_iam_trusted_profile.fn[each.key].id
  cr_type    = "CE"
  name       = local.names[each.key]

  link {
    crn            = ibm_code_engine_project.keyguard.crn
    component_type = "job"
    component_name = ibm_code_engine_job.fn[each.key].name
  }
}

# Custom Object Storage roles: the object operations keyguard's code performs and nothing
# else. The built-in Writer would also let a function suspend versioning, change the Object
# Lock configuration, bypass governance retention, delete object versions or the bucket.
resource "ibm_iam_custom_role" "objects" {
  name         = "${local.custom_role_prefix}Objects"
  display_name = "${var.prefix} objects"
  description  = "keyguard functions: read, list and write the objects of the keyguard bucket; no bucket configuration, no version deletion, no retention bypass"
  service      = "cloud-object-storage"
  actions      = local.cos_object_actions
}

resource "ibm_iam_custom_role" "object_delete" {
  name         = "${local.custom_role_prefix}ObjectDelete"
  display_name = "${var.prefix} object delete"
  description  = "keyguard completion and runner: delete objects retention no longer keeps, images and archived logs (a delete marker; versions stay until they expire)"
  service      = "cloud-object-storage"
  actions      = local.cos_delete_actions
}

# Every grant of every function: the bucket's objects (and deleting them for completion),
# publishing to the Event Notifications instance, the fleet's root keys (Writer on the keys
# keyguard rotates itself), job runs in the project, Db2 on Cloud backups. Each names one
# instance and, for objects and keys, one bucket or one key.
resource "ibm_iam_trusted_profile_policy" "fn" {
  for_each = local.grants

  iam_id      = ibm_iam_trusted_profile.fn[each.value.function].iam_id
  roles       = each.value.roles
  description = "${var.prefix}: ${each.value.function}: ${each.value.why}"

  resources {
    service              = each.value.service
    resource_instance_id = each.value.instance
    resource_type        = each.value.resource_type
    resource             = each.value.resource
  }
}
