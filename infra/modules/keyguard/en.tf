# Event Notifications: keyguard's API source, the periodic timer, one topic per route, Code
# Engine destinations carrying the shared secret, and the subscriptions that join them.

resource "ibm_resource_instance" "en" {
  name              = "${var.prefix}-en"
  service           = "event-notifications"
  plan              = var.en_plan
  location          = var.region
  resource_group_id = var.resource_group_id
  tags              = var.tags
}

# keyguard publishes its own events (key.rotated, backup.completed, ...) under this source.
resource "ibm_en_source" "keyguard" {
  instance_guid       = ibm_resource_instance.en.guid
  name                = "${var.prefix}-events"
  description         = "keyguard's own events"
  enabled             = true
  store_notifications = var.en_store_notifications
}

# The periodic-timer source is predefined in the instance (read-only in Terraform).
data "ibm_en_sources" "all" {
  instance_guid = ibm_resource_instance.en.guid
}

resource "ibm_en_topic" "tick" {
  instance_guid = ibm_resource_instance.en.guid
  name          = "${var.prefix}-tick"
  description   = "Scheduler ticks from the periodic timer"

  sources {
    id = local.periodic_timer_source_id

    rules {
      enabled = true

      event_schedule_filter {
        expression = local.tick_cron
        starts_at  = var.tick_starts_at
      }
    }
  }
}

# One topic per route, one rule per event type; the rotation topic also takes Cloud Logs alerts.
resource "ibm_en_topic" "events" {
  for_each = local.event_routes

  instance_guid = ibm_resource_instance.en.guid
  name          = "${var.prefix}-${each.key}"
  description   = "keyguard events for ${each.value.function}"

  sources {
    id = ibm_en_source.keyguard.source_id

    dynamic "rules" {
      for_each = each.value.types
      content {
        enabled           = true
        event_type_filter = "${local.event_type_field} == '${rules.value}'"
      }
    }
  }

  dynamic "sources" {
    for_each = each.value.cloud_logs && var.cloud_logs_instance_crn != null ? [var.cloud_logs_instance_crn] : []
    content {
      id = sources.value

      rules {
        enabled             = true
        event_type_filter   = "$.*"
        notification_filter = var.cloud_logs_notification_filter
      }
    }
  }

  # The Cloud Logs source exists once Cloud Logs has its outbound integration.
  depends_on = [ibm_logs_outgoing_webhook.en]
}

# Cloud Logs sends its alerts to this instance; the instance then has a source whose id is the
# Cloud Logs instance CRN. The alert definitions themselves (on kms.secrets.rotate and
# kms.secrets-event.ack) are the operator's: see docs/deploy.md.
resource "ibm_logs_outgoing_webhook" "en" {
  count       = var.cloud_logs_instance_crn == null ? 0 : 1
  instance_id = split(":", var.cloud_logs_instance_crn)[7]
  region      = split(":", var.cloud_logs_instance_crn)[5]
  name        = "${var.prefix}-event-notifications"
  type        = "ibm_event_notifications"

  ibm_event_notifications {
    event_notifications_instance_id = ibm_resource_instance.en.guid
    region_id                       = var.region
  }

  depends_on = [time_sleep.logs_en]
}

# Failed deliveries go to their own bucket (Event Notifications standard plan).
resource "ibm_en_integration_cos" "failed_events" {
  count         = var.collect_failed_events ? 1 : 0
  instance_guid = ibm_resource_instance.en.guid
  type          = "collect_failed_events"

  metadata {
    endpoint    = "https://${ibm_cos_bucket.failed_events[0].s3_endpoint_public}"
    crn         = ibm_resource_instance.cos.crn
    bucket_name = ibm_cos_bucket.failed_events[0].bucket_name
  }

  depends_on = [time_sleep.en_cos_failed_events]
}

# Apps are reached over HTTPS with the shared secret as a sensitive header.
resource "ibm_en_destination_ce" "app" {
  for_each = local.app_routes

  instance_guid         = ibm_resource_instance.en.guid
  name                  = "${var.prefix}-${each.key}"
  description           = "${each.value.function} ${each.value.path}"
  type                  = "ibmce"
  collect_failed_events = var.collect_failed_events

  config {
    params {
      type = "application"
      verb = "POST"
      url  = "${ibm_code_engine_app.fn[each.value.function].endpoint}${each.value.path}"
      custom_headers = {
        Authorization = "Bearer ${var.auth_token}"
      }
      sensitive_headers = ["Authorization"]
    }
  }

  depends_on = [time_sleep.en_codeengine, ibm_en_integration_cos.failed_events]
}

# Jobs get a job run with the notification in the ibmendata environment variable.
resource "ibm_en_destination_ce" "job" {
  for_each = local.job_routes

  instance_guid         = ibm_resource_instance.en.guid
  name                  = "${var.prefix}-${each.key}"
  description           = "${each.value.function} job"
  type                  = "ibmce"
  collect_failed_events = var.collect_failed_events

  config {
    params {
      type        = "job"
      project_crn = ibm_code_engine_project.keyguard.crn
      job_name    = ibm_code_engine_job.fn[each.value.function].name
    }
  }

  depends_on = [time_sleep.en_codeengine, ibm_en_integration_cos.failed_events]
}

resource "ibm_en_subscription_ce" "app" {
  for_each = local.app_routes

  instance_guid  = ibm_resource_instance.en.guid
  name           = "${var.prefix}-${each.key}"
  description    = "Route ${each.key} to ${each.value.function}"
  topic_id       = local.topic_ids[each.key]
  destination_id = ibm_en_destination_ce.app[each.key].destination_id
}

resource "ibm_en_subscription_ce" "job" {
  for_each = local.job_routes

  instance_guid  = ibm_resource_instance.en.guid
  name           = "${var.prefix}-${each.key}"
  description    = "Route ${each.key} to the ${each.value.function} job"
  topic_id       = local.topic_ids[each.key]
  destination_id = ibm_en_destination_ce.job[each.key].destination_id
}
