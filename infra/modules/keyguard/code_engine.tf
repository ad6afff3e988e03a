# Code Engine: the project, the secret with the credentials, three apps (HTTP) and two jobs.

resource "ibm_code_engine_project" "keyguard" {
  name              = var.prefix
  resource_group_id = var.resource_group_id
}

resource "ibm_code_engine_secret" "env" {
  project_id = ibm_code_engine_project.keyguard.project_id
  name       = "${var.prefix}-env"
  format     = "generic"
  data       = local.secret_data
}

resource "ibm_code_engine_secret" "registry" {
  count      = var.registry == null ? 0 : 1
  project_id = ibm_code_engine_project.keyguard.project_id
  name       = "${var.prefix}-registry"
  format     = "registry"
  data = {
    server   = var.registry.server
    username = var.registry.username
    password = var.registry_password
  }
}

# scheduler, rotation and completion. They never scale to zero: Event Notifications gives up on
# a delivery after about 10 s, which a cold start can exceed.
resource "ibm_code_engine_app" "fn" {
  for_each = local.apps

  project_id      = ibm_code_engine_project.keyguard.project_id
  name            = local.names[each.key]
  image_reference = var.images[each.key]
  image_secret    = local.image_secret
  image_port      = 8080
  run_as_user     = 65532

  run_compute_resource_token_enabled = !local.use_api_key

  scale_min_instances   = var.app_min_instances
  scale_max_instances   = each.key == "scheduler" ? var.scheduler_max_instances : var.app_max_instances
  scale_concurrency     = var.app_concurrency
  scale_request_timeout = var.app_request_timeout_seconds
  scale_cpu_limit       = var.app_cpu
  scale_memory_limit    = var.app_memory

  probe_readiness {
    type = "http"
    path = "/healthz"
    port = 8080
  }

  dynamic "run_env_variables" {
    for_each = local.literal_env[each.key]
    content {
      type  = "literal"
      name  = run_env_variables.key
      value = run_env_variables.value
    }
  }

  dynamic "run_env_variables" {
    for_each = local.secret_env
    content {
      type      = "secret_key_reference"
      name      = run_env_variables.key
      reference = ibm_code_engine_secret.env.name
      key       = run_env_variables.value
    }
  }
}

# runner (one job run per backup, started by the scheduler) and restore (started by Event
# Notifications on restore.requested, which passes the notification in ibmendata).
resource "ibm_code_engine_job" "fn" {
  for_each = local.jobs

  project_id      = ibm_code_engine_project.keyguard.project_id
  name            = local.names[each.key]
  image_reference = var.images[each.key]
  image_secret    = local.image_secret
  run_as_user     = 65532
  run_mode        = "task"

  run_compute_resource_token_enabled = !local.use_api_key

  scale_array_spec              = "0"
  scale_max_execution_time      = local.jobs_settings[each.key].timeout
  scale_retry_limit             = local.jobs_settings[each.key].retries
  scale_cpu_limit               = var.job_cpu
  scale_memory_limit            = var.job_memory
  scale_ephemeral_storage_limit = var.job_ephemeral_storage

  dynamic "run_env_variables" {
    for_each = local.literal_env[each.key]
    content {
      type  = "literal"
      name  = run_env_variables.key
      value = run_env_variables.value
    }
  }

  dynamic "run_env_variables" {
    for_each = local.secret_env
    content {
      type      = "secret_key_reference"
      name      = run_env_variables.key
      reference = ibm_code_engine_secret.env.name
      key       = run_env_variables.value
    }
  }
}
