# patroni-router Terraform module: outputs.

output "router_function_name" {
  description = "The scheduled router (direct invokes: plan/reconcile)."
  value       = aws_lambda_function.router.function_name
}

output "router_function_arn" {
  value = aws_lambda_function.router.arn
}

output "webhook_function_name" {
  value = aws_lambda_function.webhook.function_name
}

output "webhook_function_arn" {
  description = "iam mode: the nodes' role needs lambda:InvokeFunctionUrl and lambda:InvokeFunction on this ARN."
  value       = aws_lambda_function.webhook.arn
}

output "webhook_url" {
  description = "Give this to `patroni-router notify --url` in the Patroni callbacks."
  value       = aws_lambda_function_url.webhook.function_url
}

output "role_arn" {
  description = "The role both functions run as."
  value       = aws_iam_role.router.arn
}

output "routing_policy_json" {
  description = "The role's routing policy (the same as template.yaml's RouterRole)."
  value       = aws_iam_role_policy.routing.policy
}

output "log_group_names" {
  value = {
    router  = aws_cloudwatch_log_group.router.name
    webhook = aws_cloudwatch_log_group.webhook.name
  }
}

output "schedule_rule_arn" {
  value = aws_cloudwatch_event_rule.every.arn
}

output "failed_invocations_queue_url" {
  description = "Scheduled runs that failed, with their errors."
  value       = aws_sqs_queue.failed.url
}

output "alarm_topic_arn" {
  description = "Where the alarms notify (empty: nowhere)."
  value       = try(local.alarm_actions[0], "")
}

output "alarm_names" {
  value = concat(
    [for a in aws_cloudwatch_metric_alarm.emf : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.function_errors : a.alarm_name],
    [aws_cloudwatch_metric_alarm.failed_invocations.alarm_name],
  )
}

output "dashboard_name" {
  description = "The CloudWatch dashboard of the router's metrics."
  value       = aws_cloudwatch_dashboard.router.dashboard_name
}
