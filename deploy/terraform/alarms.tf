# patroni-router Terraform module: the on-failure queue, the optional SNS topic and the alarms.

locals {
  creates_topic = var.alarm_topic_arn == "" && var.alarm_email != ""
  alarm_actions = var.alarm_topic_arn != "" ? [var.alarm_topic_arn] : (local.creates_topic ? [aws_sns_topic.alarms[0].arn] : [])

  # Alarms on the router's EMF metrics (the dimensionless series: any cluster, either function).
  # Missing data is not breaching: no run, no decision; the Errors and failed-invocation alarms
  # cover a dead router.
  emf_alarms = {
    ambiguous = {
      metric      = "DecisionAmbiguous", statistic = "Sum", periods = 1, operator = "GreaterThanOrEqualToThreshold", threshold = 1
      description = "The router saw contradicting Patroni evidence (split brain, disagreeing DCS views) and left routing as it was. Read the \"decision\" log line's evidence."
    }
    fence-refused = {
      metric      = "FenceRefused", statistic = "Sum", periods = 1, operator = "GreaterThanOrEqualToThreshold", threshold = 1
      description = "A decision would have routed a cluster back to an older timeline than its fence (a stale view, a thawed old primary, or a cluster initialised anew) and nothing was changed. Read the report's \"fence:\" error."
    }
    config-rejected = {
      metric      = "ConfigRejected", statistic = "Sum", periods = 1, operator = "GreaterThanOrEqualToThreshold", threshold = 1
      description = "A new version of the config object (config_s3_uri) was refused (invalid); the previous config keeps routing. The function's log names the field and the fix."
    }
    aws-throttled = {
      metric      = "AwsThrottled", statistic = "Sum", periods = 1, operator = "GreaterThanOrEqualToThreshold", threshold = 1
      description = "AWS throttled the router's calls after the SDK's retries: the account's API budget is spent by others too. Lower aws.budget.share's neighbours or raise it knowingly; the report names the calls."
    }
    ownership-conflict = {
      metric      = "OwnershipConflicts", statistic = "Sum", periods = 1, operator = "GreaterThanOrEqualToThreshold", threshold = 1
      description = "A record or target group in the config is marked by another owner (another deployment or database) and was not changed. Read the report's \"ownership conflict:\" error."
    }
    routing-lag = {
      metric      = "RoutingLag", statistic = "Maximum", periods = 1, operator = "GreaterThanThreshold", threshold = var.routing_lag_alarm_ms
      description = "A failover took more than ${var.routing_lag_alarm_ms} ms from the new primary's promotion to AWS routing to it. Check that Patroni's on_role_change callback reaches the webhook (the schedule alone is up to a minute late)."
    }
    no-primary = {
      metric      = "DecisionNoPrimary", statistic = "Sum", periods = var.no_primary_minutes, operator = "GreaterThanOrEqualToThreshold", threshold = 1
      description = "A cluster has had no confirmed primary for ${var.no_primary_minutes} minutes - Patroni unreachable, DCS down or failover stuck; routing is frozen (fail-static)."
    }
    apply-errors = {
      metric      = "ApplyErrors", statistic = "Sum", periods = 2, operator = "GreaterThanOrEqualToThreshold", threshold = 1
      description = "A reconcile could not read or change AWS (throttling that outlasted retries, access denied, a missing target group or zone, a blocked record). The report's errors name the resource."
    }
    replication-lag = {
      metric      = "MaxReplicationLag", statistic = "Maximum", periods = 5, operator = "GreaterThanThreshold", threshold = var.replication_lag_alarm_bytes
      description = "A replica has been more than ${var.replication_lag_alarm_bytes} bytes behind its primary for 5 minutes."
    }
  }
  function_alarms = {
    function-errors = {
      function    = aws_lambda_function.router.function_name
      description = "The scheduled router function failed (bad config at init, crash, timeout) - no safety-net reconcile is running."
    }
    webhook-errors = {
      function    = aws_lambda_function.webhook.function_name
      description = "The webhook function failed (bad config at init, crash, timeout) - Patroni callbacks are not routed fast; the schedule still reconciles every minute."
    }
  }
}

resource "aws_sqs_queue" "failed" {
  name                      = "${local.router_name}-failed"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sns_topic" "alarms" {
  count             = local.creates_topic ? 1 : 0
  name              = "${local.router_name}-alarms"
  kms_master_key_id = "alias/aws/sns"
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  count     = local.creates_topic ? 1 : 0
  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "emf" {
  for_each            = local.emf_alarms
  alarm_name          = "${local.router_name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = var.metrics_namespace
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  period              = 60
  evaluation_periods  = each.value.periods
  datapoints_to_alarm = each.value.periods
  threshold           = each.value.threshold
  comparison_operator = each.value.operator
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each            = local.function_alarms
  alarm_name          = "${local.router_name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value.function }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "failed_invocations" {
  alarm_name          = "${local.router_name}-failed-invocations"
  alarm_description   = "Scheduled runs failed and were sent to the on-failure queue; read the messages for the error."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.failed.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

# The router's EMF metrics on one dashboard, every cluster together (the body is the same as
# template.yaml's Dashboard; a test keeps the two alike).
data "aws_region" "current" {}

resource "aws_cloudwatch_dashboard" "router" {
  dashboard_name = local.router_name
  dashboard_body = templatefile("${path.module}/dashboard.json.tftpl", {
    namespace = var.metrics_namespace
    region    = data.aws_region.current.name
  })
}
