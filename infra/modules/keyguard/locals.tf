# Names, endpoints, routes and the environment of every function.
#
# The Go checks in infra/check compare these against shared/config (FunctionEnv, Routes, Apps,
# Jobs): a variable a main reads must be set here, and every route must have a topic and a
# subscription.

locals {
  apps = toset(["scheduler", "rotation", "completion"])
  jobs = toset(["runner", "restore"])

  functions = setunion(local.apps, local.jobs)
  names     = { for fn in local.functions : fn => "${var.prefix}-${fn}" }

  # Only whether a key is set is revealed, so that it can choose between plain values.
  use_api_key = nonsensitive(var.api_key != "")
  use_hmac    = var.cos_hmac != null

  # Key Protect: create an instance and a key, create only a key, or use an existing key.
  create_kms_key      = var.existing_kms_key_crn == null
  create_kms_instance = local.create_kms_key && var.existing_kms_instance_guid == null
  kms_key_crn         = local.create_kms_key ? ibm_kms_key.root[0].crn : var.existing_kms_key_crn
  kms_instance_guid = (
    !local.create_kms_key ? split(":", var.existing_kms_key_crn)[7] :
    local.create_kms_instance ? ibm_resource_instance.kms[0].guid : var.existing_kms_instance_guid
  )
  kms_region = local.create_kms_key ? var.region : split(":", var.existing_kms_key_crn)[5]

  # A cross-region bucket can only be encrypted with a root key from a Key Protect instance in
  # the high-availability location that serves it (ibm-cloud-docs/cloud-object-storage kp.md).
  cross_region_kms_location = { us = "us-south", eu = "eu-de", ap = "jp-tok" }
  kms_key_fits_bucket = (
    var.bucket_cross_region_location == null ||
    local.kms_region == lookup(local.cross_region_kms_location, coalesce(var.bucket_cross_region_location, "none"), "")
  )
  kms_key_misfit = "A bucket in cross-region location ${coalesce(var.bucket_cross_region_location, "none")} needs its root key in ${lookup(local.cross_region_kms_location, coalesce(var.bucket_cross_region_location, "none"), "?")}, but the key is in ${local.kms_region}: use a key from us-south (us), eu-de (eu) or jp-tok (ap)."
  kms_url        = var.kms_private_endpoint ? "https://private.${local.kms_region}.kms.cloud.ibm.com" : "https://${local.kms_region}.kms.cloud.ibm.com"

  en_url = var.en_private_endpoint ? "https://private.${var.region}.event-notifications.cloud.ibm.com" : "https://${var.region}.event-notifications.cloud.ibm.com"

  # The EN periodic-timer source exists in every instance and cannot be created by Terraform:
  # it is read back through the ibm_en_sources data source.
  periodic_timer_source_id = one([for s in data.ibm_en_sources.all.sources : s.id if s.type == "periodic-timer"])
  tick_cron                = "*/${var.tick_interval_minutes} * * * *"

  bucket_location = coalesce(var.bucket_cross_region_location, var.region)
  cos_endpoints = {
    public  = ibm_cos_bucket.state.s3_endpoint_public
    private = ibm_cos_bucket.state.s3_endpoint_private
    direct  = ibm_cos_bucket.state.s3_endpoint_direct
  }
  cos_endpoint = "https://${local.cos_endpoints[var.cos_endpoint_type]}"

  # Keys inside the bucket are relative to the prefix; the store adds a "/" after a non-empty one.
  cos_key_prefix = var.cos_prefix == "" ? "" : "${trimsuffix(var.cos_prefix, "/")}/"
  fleet_key      = "config/fleet.yaml"

  # What the archive keeps: image files and catalog entries (never state/, config/ or marks).
  archive = var.archive_lock_days > 0
  archive_prefixes = {
    images  = { prefix = "${local.cos_key_prefix}images/", priority = 2 }
    catalog = { prefix = "${local.cos_key_prefix}catalog/", priority = 1 }
  }

  image_secret = var.registry == null ? null : ibm_code_engine_secret.registry[0].name

  # -------------------------------------------------------------------------------------------
  # Event routing (mirrors config.Routes). Types are matched with one rule each, because a rule's
  # event_type_filter admits no "||". dev.keyguard.preflight travels every route: the deployment
  # preflight publishes it and each function records its receipt.
  # -------------------------------------------------------------------------------------------

  event_type_field = "$.type"

  event_routes = {
    "scheduler-events" = {
      function   = "scheduler"
      kind       = "app"
      path       = "/events"
      cloud_logs = false
      types      = ["dev.keyguard.backup.requested", "dev.keyguard.tick.shard", "dev.keyguard.preflight"]
    }
    "rotation-events" = {
      function   = "rotation"
      kind       = "app"
      path       = "/events"
      cloud_logs = true
      types      = ["dev.keyguard.key.rotated", "dev.keyguard.key.state_changed", "dev.keyguard.preflight"]
    }
    "completion-events" = {
      function   = "completion"
      kind       = "app"
      path       = "/events"
      cloud_logs = false
      types      = ["dev.keyguard.backup.completed", "dev.keyguard.backup.failed", "dev.keyguard.preflight"]
    }
    "restore-events" = {
      function   = "restore"
      kind       = "job"
      path       = ""
      cloud_logs = false
      types      = ["dev.keyguard.restore.requested", "dev.keyguard.preflight"]
    }
  }

  # Alerts (events.TypeAlert) by severity (events.Severity), to people rather than functions.
  alert_type       = "dev.keyguard.alert"
  alert_severities = ["critical", "warning", "info"]
  alert_colors     = { critical = "#d92b2b", warning = "#f2a900", info = "#4589ff" }
  alert_destinations = compact([
    var.alert_email == null ? "" : "email",
    var.alert_slack == null ? "" : "slack",
    var.alert_webhook == null ? "" : "webhook",
    var.alert_pagerduty == null ? "" : "pagerduty",
  ])
  alert_webhook_headers = var.alert_webhook_authorization == "" ? {} : { Authorization = var.alert_webhook_authorization }

  # Every route that ends at an app, the periodic tick included, and every route that ends at a job.
  app_routes = merge(
    { tick = { function = "scheduler", path = "/tick" } },
    { for k, r in local.event_routes : k => { function = r.function, path = r.path } if r.kind == "app" },
  )
  job_routes = { for k, r in local.event_routes : k => { function = r.function } if r.kind == "job" }

  topic_ids = merge(
    { tick = ibm_en_topic.tick.topic_id },
    { for k, t in ibm_en_topic.events : k => t.topic_id },
  )

  # -------------------------------------------------------------------------------------------
  # Environment (names from shared/config/env.go)
  # -------------------------------------------------------------------------------------------

  # Secret values live in one Code Engine secret; the functions read them by key.
  secret_data = merge(
    { "auth-token" = var.auth_token },
    local.use_api_key ? { "api-key" = var.api_key } : {},
    local.use_hmac ? { "cos-hmac-secret" = var.cos_hmac_secret } : {},
  )
  secret_env = merge(
    { KEYGUARD_AUTH_TOKEN = "auth-token" },
    local.use_api_key ? { KEYGUARD_API_KEY = "api-key" } : {},
    local.use_hmac ? { KEYGUARD_COS_HMAC_SECRET = "cos-hmac-secret" } : {},
  )
  # A credential that is not used is set, empty, so that every function sees every variable.
  unused_secret_env = merge(
    local.use_api_key ? {} : { KEYGUARD_API_KEY = "" },
    local.use_hmac ? {} : { KEYGUARD_COS_HMAC_SECRET = "" },
  )

  common_env = merge(local.unused_secret_env, {
    KEYGUARD_LOG_LEVEL        = var.log_level
    KEYGUARD_IAM_URL          = var.iam_url
    KEYGUARD_COS_ENDPOINT     = local.cos_endpoint
    KEYGUARD_COS_REGION       = local.bucket_location
    KEYGUARD_COS_BUCKET       = ibm_cos_bucket.state.bucket_name
    KEYGUARD_COS_PREFIX       = var.cos_prefix
    KEYGUARD_COS_INSTANCE_CRN = ibm_resource_instance.cos.crn
    KEYGUARD_COS_HMAC_KEY_ID  = local.use_hmac ? var.cos_hmac.access_key_id : ""
    KEYGUARD_EN_URL           = local.en_url
    KEYGUARD_EN_INSTANCE_ID   = ibm_resource_instance.en.guid
    KEYGUARD_EN_SOURCE_ID     = ibm_en_source.keyguard.source_id
    KEYGUARD_FLEET_KEY        = local.fleet_key
  })

  kms_env = {
    KEYGUARD_KP_URL         = local.kms_url
    KEYGUARD_KP_INSTANCE_ID = local.kms_instance_guid
  }

  executor_env = {
    KEYGUARD_DB2SAAS_URL   = var.db2saas_url
    KEYGUARD_CE_PROJECT_ID = ibm_code_engine_project.keyguard.project_id
    KEYGUARD_CE_REGION     = var.region
    KEYGUARD_CE_RUNNER_JOB = local.names["runner"]
  }

  # Each function authenticates as its own trusted profile.
  profile_env = {
    for fn in local.functions : fn => { KEYGUARD_TRUSTED_PROFILE = local.use_api_key ? "" : ibm_iam_trusted_profile.fn[fn].name }
  }

  # What only some functions read, on top of what every function reads.
  function_env = {
    scheduler  = merge(local.kms_env, local.executor_env)
    rotation   = local.kms_env
    completion = {}
    runner     = local.kms_env
    restore    = local.kms_env
  }

  literal_env = { for fn in local.functions : fn => merge(local.common_env, local.profile_env[fn], lookup(local.function_env, fn, {})) }

  jobs_settings = {
    runner = {
      timeout = var.runner_timeout_seconds
      retries = var.runner_retry_limit
    }
    restore = {
      timeout = var.restore_timeout_seconds
      retries = var.restore_retry_limit
    }
  }

  db2_instances = { for crn in var.db2_instance_crns : split(":", crn)[7] => crn }

  # -------------------------------------------------------------------------------------------
  # Least privilege per function
  # -------------------------------------------------------------------------------------------

  # What each function's code calls (functions/<name>/main.go and its handler package); the
  # checks in infra/check/access.go hold the same table, derived from the code, and compare.
  #   objects:     read, list and write objects of the bucket (every function: state, catalog,
  #                fleet policy, images, restore marks)
  #   delete:      delete objects (completion's chain-safe retention; the runner's log
  #                retention of a DB2REMOTE archive in the bucket, log_archive.prune)
  #   publish:     send notifications (every function)
  #   keys:        read the fleet's root keys, rotate those keyguard rotates (scheduler)
  #   job_runs:    start, read and cancel runner job runs (scheduler, Code Engine executor)
  #   db2_backups: start and list Db2 on Cloud backups (scheduler, db2saas executor)
  function_access = {
    scheduler  = { objects = true, delete = false, publish = true, keys = true, rotate = true, job_runs = true, db2_backups = true }
    rotation   = { objects = true, delete = false, publish = true, keys = false, rotate = false, job_runs = false, db2_backups = false }
    completion = { objects = true, delete = true, publish = true, keys = false, rotate = false, job_runs = false, db2_backups = false }
    runner     = { objects = true, delete = true, publish = true, keys = true, rotate = false, job_runs = false, db2_backups = false }
    restore    = { objects = true, delete = false, publish = true, keys = true, rotate = false, job_runs = false, db2_backups = false }
  }

  # The S3 operations of shared/objstore and shared/upload as Object Storage IAM actions
  # (ibm-cloud-docs/cloud-object-storage iam.md); infra/check derives the operations from the code.
  cos_object_actions = [
    "cloud-object-storage.bucket.head",                 # HeadBucket
    "cloud-object-storage.bucket.get",                  # ListObjectsV2
    "cloud-object-storage.object.head",                 # HeadObject
    "cloud-object-storage.object.get",                  # GetObject
    "cloud-object-storage.object.put",                  # PutObject, conditional writes included
    "cloud-object-storage.object.post_initiate_upload", # CreateMultipartUpload
    "cloud-object-storage.object.put_part",             # UploadPart
    "cloud-object-storage.object.post_complete_upload", # CompleteMultipartUpload
    "cloud-object-storage.object.delete_upload",        # AbortMultipartUpload
    "cloud-object-storage.object.get_uploads",          # ListParts (is an aborted upload gone?)
  ]
  cos_delete_actions = [
    "cloud-object-storage.object.delete",            # DeleteObject (on a versioned bucket: a delete marker)
    "cloud-object-storage.object.post_multi_delete", # DeleteObjects (retention deletes in batches)
  ]

  # Custom role names: a capital letter, then letters and digits, 30 at most.
  custom_role_prefix = substr(replace(title(replace(var.prefix, "-", " ")), " ", ""), 0, 18)

  # The root keys of the fleet policy (the keys of its databases and of its keys: list), and
  # those keyguard rotates itself (managed_rotation.every set).
  fleet = yamldecode(file(var.fleet_file))
  fleet_key_crns = distinct(compact(concat(
    try([for db in local.fleet.databases : try(db.key_crn, "")], []),
    try([for db in local.fleet.databases : try(db.keystore_key_crn, "")], []),
    try([local.fleet.defaults.keystore_key_crn], []),
    try([for k in local.fleet.keys : k.crn], []),
  )))
  managed_key_crns = try([for k in local.fleet.keys : k.crn if try(k.managed_rotation.every, null) != null], [])

  grants = merge(
    {
      for fn, a in local.function_access : "${fn}/objects" => {
        function      = fn
        service       = "cloud-object-storage"
        roles         = concat([ibm_iam_custom_role.objects.display_name], a.delete ? [ibm_iam_custom_role.object_delete.display_name] : [])
        instance      = ibm_resource_instance.cos.guid
        resource_type = "bucket"
        resource      = ibm_cos_bucket.state.bucket_name
        why           = a.delete ? "objects of the keyguard bucket, deleting included" : "objects of the keyguard bucket"
      } if a.objects
    },
    {
      for fn, a in local.function_access : "${fn}/publish" => {
        function      = fn
        service       = "event-notifications"
        roles         = [local.roles.en_publisher]
        instance      = ibm_resource_instance.en.guid
        resource_type = null
        resource      = null
        why           = "publish keyguard events"
      } if a.publish
    },
    {
      for pair in setproduct([for fn, a in local.function_access : fn if a.keys], local.fleet_key_crns) : "${pair[0]}/key/${split(":", pair[1])[9]}" => {
        function      = pair[0]
        service       = "kms"
        roles         = [contains(local.managed_key_crns, pair[1]) && local.function_access[pair[0]].rotate ? local.roles.kms_writer : local.roles.kms_reader]
        instance      = split(":", pair[1])[7]
        resource_type = "key"
        resource      = split(":", pair[1])[9]
        why           = contains(local.managed_key_crns, pair[1]) && local.function_access[pair[0]].rotate ? "read and rotate root key ${split(":", pair[1])[9]}" : "read root key ${split(":", pair[1])[9]}, wrap and unwrap with it"
      }
    },
    {
      for fn, a in local.function_access : "${fn}/job-runs" => {
        function      = fn
        service       = "codeengine"
        roles         = [local.roles.ce_writer]
        instance      = ibm_code_engine_project.keyguard.project_id
        resource_type = null
        resource      = null
        why           = "start runner job runs"
      } if a.job_runs
    },
    {
      for pair in setproduct([for fn, a in local.function_access : fn if a.db2_backups], keys(local.db2_instances)) : "${pair[0]}/db2/${pair[1]}" => {
        function      = pair[0]
        service       = "dashdb-for-transactions"
        roles         = [local.roles.db2_operator]
        instance      = pair[1]
        resource_type = null
        resource      = null
        why           = "back up Db2 instance ${pair[1]}"
      }
    },
  )

  # How long a new service-to-service authorization is given to propagate before a resource
  # that needs it is created (IBM's modules wait 30s).
  iam_propagation_wait = "30s"

  # -------------------------------------------------------------------------------------------
  # IAM role names. The provider matches them against the display names IAM defines for the
  # policy's service, exactly; infra/check/roles.go lists those names with their sources.
  # -------------------------------------------------------------------------------------------

  roles = {
    # Event Notifications (ibm-cloud-docs/event-notifications en-iam.md): sending notifications
    # only; a Cloud Logs instance registering as a source.
    en_publisher      = "Event Notification Publisher"
    en_source_manager = "Event Source Manager"
    # Key Protect (ibm-cloud-docs/key-protect concepts/manage-access.md): Reader reads key
    # metadata, versions and registrations; Writer also rotates.
    kms_reader = "Reader"
    kms_writer = "Writer"
    # Cloud Object Storage (ibm-cloud-docs/cloud-object-storage iam.md): Reader lists and reads,
    # Object Writer uploads and nothing else.
    cos_reader        = "Reader"
    cos_object_writer = "Object Writer"
    # Code Engine: Writer creates (and deletes) job runs; Viewer and Writer for Event
    # Notifications' deliveries (ibm-cloud-docs/event-notifications en-destination-codeengine.md).
    ce_viewer = "Viewer"
    ce_writer = "Writer"
    # Db2 on Cloud: Operator is the narrowest role with dashdb-for-transactions.console.backup.
    db2_operator = "Operator"
  }
}
