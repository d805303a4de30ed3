# Example root for the patroni-router module: what it deployed.

output "webhook_url" {
  value = module.router.webhook_url
}

output "router_function_name" {
  value = module.router.router_function_name
}

output "webhook_function_name" {
  value = module.router.webhook_function_name
}

output "alarm_names" {
  value = module.router.alarm_names
}

output "module_inputs" {
  description = "The module's routing inputs (scripts/check_policy_parity.py evaluates template.yaml with the same)."
  value       = local.module_inputs
}

output "routing_policy_json" {
  value = module.router.routing_policy_json
}
