# Alerts (dev.keyguard.alert) reach people: one topic per severity, filtered on the alert's
# data.severity, and subscriptions of the email, Slack, webhook and PagerDuty destinations the
# deployer configures to the severities each should get. At least one is required: an alert
# that reaches no one is a backup failure nobody hears of.

resource "ibm_en_topic" "alerts" {
  for_each = toset(local.alert_severities)

  instance_guid = ibm_resource_instance.en.guid
  name          = "${var.prefix}-alerts-${each.key}"
  description   = "keyguard alerts of severity ${each.key}"

  sources {
    id = ibm_en_source.keyguard.source_id

    rules {
      enabled             = true
      event_type_filter   = "${local.event_type_field} == '${local.alert_type}'"
      notification_filter = "$.data.severity == '${each.key}'"
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.alert_destinations) > 0
      error_message = "No alert destination is configured: set at least one of alert_email, alert_slack, alert_webhook or alert_pagerduty, or keyguard's alerts reach no one."
    }
  }
}

# Email goes through the instance's own email destination (type smtp_ibm), which exists in
# every Event Notifications instance and is looked up, like the periodic-timer source.
data "ibm_en_destinations" "all" {
  count         = var.alert_email == null ? 0 : 1
  instance_guid = ibm_resource_instance.en.guid
}

resource "ibm_en_subscription_email" "alerts" {
  for_each = var.alert_email == null ? toset([]) : toset(var.alert_email.severities)

  instance_guid  = ibm_resource_instance.en.guid
  name           = "${var.prefix}-alerts-${each.key}-email"
  description    = "keyguard ${each.key} alerts by email"
  topic_id       = ibm_en_topic.alerts[each.key].topic_id
  destination_id = one([for d in data.ibm_en_destinations.all[0].destinations : d.id if d.type == "smtp_ibm"])

  attributes {
    invited                  = var.alert_email.recipients
    add_notification_payload = true
  }
}

resource "ibm_en_destination_slack" "alerts" {
  count = var.alert_slack == null ? 0 : 1

  instance_guid         = ibm_resource_instance.en.guid
  name                  = "${var.prefix}-alerts-slack"
  description           = "keyguard alerts to a Slack channel"
  type                  = "slack"
  collect_failed_events = var.collect_failed_events

  config {
    params {
      type = "incoming_webhook"
      url  = var.alert_slack_webhook_url
    }
  }

  depends_on = [ibm_en_integration_cos.failed_events]

  lifecycle {
    precondition {
      condition     = nonsensitive(var.alert_slack_webhook_url != "")
      error_message = "alert_slack needs alert_slack_webhook_url (a Slack incoming webhook URL)."
    }
  }
}

resource "ibm_en_subscription_slack" "alerts" {
  for_each = var.alert_slack == null ? toset([]) : toset(var.alert_slack.severities)

  instance_guid  = ibm_resource_instance.en.guid
  name           = "${var.prefix}-alerts-${each.key}-slack"
  description    = "keyguard ${each.key} alerts to Slack"
  topic_id       = ibm_en_topic.alerts[each.key].topic_id
  destination_id = ibm_en_destination_slack.alerts[0].destination_id

  attributes {
    attachment_color = local.alert_colors[each.key]
  }
}

resource "ibm_en_destination_webhook" "alerts" {
  count = var.alert_webhook == null ? 0 : 1

  instance_guid         = ibm_resource_instance.en.guid
  name                  = "${var.prefix}-alerts-webhook"
  description           = "keyguard alerts to ${var.alert_webhook.url}"
  type                  = "webhook"
  collect_failed_events = var.collect_failed_events

  config {
    params {
      verb              = "POST"
      url               = var.alert_webhook.url
      custom_headers    = local.alert_webhook_headers
      sensitive_headers = keys(local.alert_webhook_headers)
    }
  }

  depends_on = [ibm_en_integration_cos.failed_events]
}

resource "ibm_en_subscription_webhook" "alerts" {
  for_each = var.alert_webhook == null ? toset([]) : toset(var.alert_webhook.severities)

  instance_guid  = ibm_resource_instance.en.guid
  name           = "${var.prefix}-alerts-${each.key}-webhook"
  description    = "keyguard ${each.key} alerts to the webhook"
  topic_id       = ibm_en_topic.alerts[each.key].topic_id
  destination_id = ibm_en_destination_webhook.alerts[0].destination_id

  attributes {
    signing_enabled = true
  }
}

resource "ibm_en_destination_pagerduty" "alerts" {
  count = var.alert_pagerduty == null ? 0 : 1

  instance_guid         = ibm_resource_instance.en.guid
  name                  = "${var.prefix}-alerts-pagerduty"
  description           = "keyguard alerts to a PagerDuty service"
  type                  = "pagerduty"
  collect_failed_events = var.collect_failed_events

  config {
    params {
      routing_key = var.alert_pagerduty_routing_key
    }
  }

  depends_on = [ibm_en_integration_cos.failed_events]

  lifecycle {
    precondition {
      condition     = nonsensitive(var.alert_pagerduty_routing_key != "")
      error_message = "alert_pagerduty needs alert_pagerduty_routing_key (the integration key of a PagerDuty Events API v2 integration)."
    }
  }
}

resource "ibm_en_subscription_pagerduty" "alerts" {
  for_each = var.alert_pagerduty == null ? toset([]) : toset(var.alert_pagerduty.severities)

  instance_guid  = ibm_resource_instance.en.guid
  name           = "${var.prefix}-alerts-${each.key}-pagerduty"
  description    = "keyguard ${each.key} alerts to PagerDuty"
  topic_id       = ibm_en_topic.alerts[each.key].topic_id
  destination_id = ibm_en_destination_pagerduty.alerts[0].destination_id

  attributes {}
}
