# Example root for the patroni-router module: its variables (what to deploy, and where).

variable "aws_endpoint_url" {
  description = "Empty: real AWS. Else one endpoint for every service (moto: make terraform-test)."
  type        = string
  default     = ""
}

variable "lambda_zip" {
  description = "The cargo-lambda zip (make build-lambda)."
  type        = string
}

variable "architecture" {
  description = "The zip's architecture: arm64 or x86_64."
  type        = string
  default     = "arm64"
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "name" {
  description = "Prefix of every name."
  type        = string
  default     = "pgrouter-example"
}

variable "webhook_auth" {
  description = "iam or hmac."
  type        = string
  default     = "iam"
}

variable "webhook_secret" {
  description = "hmac: the example stores this in Secrets Manager and gives the module its ARN (16+ random bytes, e.g. openssl rand -hex 32)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "config_source" {
  description = "inline (ROUTER_CONFIG) or s3 (the example puts the config in an S3 object; ROUTER_CONFIG_S3)."
  type        = string
  default     = "inline"
  validation {
    condition     = contains(["inline", "s3"], var.config_source)
    error_message = "config_source: inline or s3."
  }
}

variable "route_target_groups" {
  description = "Create a writer and a reader NLB target group and route them."
  type        = bool
  default     = true
}

variable "route_zones" {
  description = "Create a private hosted zone and route a record in it."
  type        = bool
  default     = true
}

variable "manage_target_group_settings" {
  description = "Let the router fix the target groups' settings (manage_settings in the config)."
  type        = bool
  default     = true
}

variable "alarm_email" {
  description = "Subscribe this address to a new alarm topic (empty: alarms without actions)."
  type        = string
  default     = ""
}
