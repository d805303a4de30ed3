# patroni-router Terraform module: input variables (the SAM template's parameters, snake_case).

variable "name" {
  description = "Prefix of every name (the SAM stack name's role): functions are NAME-patroni-router and NAME-patroni-router-webhook."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.name))
    error_message = "name: 1-40 letters, digits, - or _ (function names are at most 64 characters)."
  }
}

variable "lambda_zip" {
  description = "Path to the cargo-lambda zip (make build-lambda: target/lambda/patroni-router/bootstrap.zip); its architecture must match var.architecture."
  type        = string
}

variable "architecture" {
  description = "arm64 (default) or x86_64: the zip's architecture."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture: arm64 or x86_64."
  }
}

variable "router_config" {
  description = "The router config as inline JSON (README, \"Configuration\"): up to 4 KiB with everything else in the environment, a few clusters. Set this or config_s3_uri, not both."
  type        = string
  default     = ""
}

variable "config_s3_uri" {
  description = "The router config as an S3 object, s3://bucket/key. The functions get ROUTER_CONFIG_S3 and s3:GetObject on exactly that object. Set this or router_config, not both."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^$|^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^*?]+$", var.config_s3_uri))
    error_message = "config_s3_uri: empty or s3://bucket/key (no wildcards)."
  }
}

variable "shard" {
  description = "With several deployments over one config: this one's shard, INDEX/COUNT (e.g. 0/4); it routes the clusters whose scope hashes to INDEX and takes 1/COUNT of the AWS budget share. Empty: every cluster."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^$|^[0-9]+/[0-9]+$", var.shard))
    error_message = "shard: empty or INDEX/COUNT, e.g. 0/4."
  }
}

variable "target_group_arns" {
  description = "The target group ARNs the config routes (readers' too): the functions may register/deregister targets and add/remove tags only on these."
  type        = list(string)
  default     = []
}

variable "hosted_zone_ids" {
  description = "The hosted zone ids the config routes, without /hostedzone/: the functions may list/change records only there."
  type        = list(string)
  default     = []
}

variable "subnet_ids" {
  description = "Private subnets from which the functions reach every Patroni node's port 8008, the ELBv2 API (NAT or the elasticloadbalancing interface endpoint) and the Route 53 API (NAT: it has no VPC endpoint)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the functions; the Patroni nodes must accept them on port 8008."
  type        = list(string)
}

variable "manage_target_group_settings" {
  description = "true if any target group in the config has manage_settings: the functions may then modify those target groups' attributes and health check."
  type        = bool
  default     = false
}

variable "webhook_auth" {
  description = "iam (default): function URL AuthType AWS_IAM, AWS refuses unsigned requests before any invocation. hmac: AuthType NONE, the router checks the shared secret (every request is an invocation)."
  type        = string
  default     = "iam"
  validation {
    condition     = contains(["iam", "hmac"], var.webhook_auth)
    error_message = "webhook_auth: iam or hmac."
  }
}

variable "webhook_secret_arn" {
  description = "For hmac: the Secrets Manager secret (16+ random bytes) read at apply time into the webhook function's environment (and therefore into the Terraform state). Required with hmac."
  type        = string
  default     = ""
}

variable "webhook_concurrency" {
  description = "Reserved concurrency of the webhook function: the most webhook runs at once, and all a flood can take (the scheduled function keeps its own slot)."
  type        = number
  default     = 2
  validation {
    condition     = var.webhook_concurrency >= 1 && var.webhook_concurrency <= 100
    error_message = "webhook_concurrency: 1..100."
  }
}

variable "schedule_expression" {
  description = "How often the safety-net reconcile runs."
  type        = string
  default     = "rate(1 minute)"
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the router's EMF metrics."
  type        = string
  default     = "PatroniRouter"
}

variable "alarm_topic_arn" {
  description = "An existing SNS topic for the alarms. Empty: set alarm_email to create one, or leave both empty for alarms without actions."
  type        = string
  default     = ""
}

variable "alarm_email" {
  description = "With no alarm_topic_arn: create an SNS topic for the alarms and subscribe this address (confirm the email AWS sends)."
  type        = string
  default     = ""
}

variable "no_primary_minutes" {
  description = "Alarm when a cluster has had no confirmed primary in this many consecutive minutes."
  type        = number
  default     = 3
  validation {
    condition     = var.no_primary_minutes >= 1 && var.no_primary_minutes <= 60
    error_message = "no_primary_minutes: 1..60."
  }
}

variable "routing_lag_alarm_ms" {
  description = "Alarm when a failover took longer than this (ms) from the new primary's promotion to AWS routing to it."
  type        = number
  default     = 10000
}

variable "replication_lag_alarm_bytes" {
  description = "Alarm when the largest replica lag stays above this many bytes for 5 minutes."
  type        = number
  default     = 16777216
}

variable "log_retention_in_days" {
  description = "Retention of the functions' log groups."
  type        = number
  default     = 30
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 180, 365, 400, 545, 731, 1827, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days: one of the values CloudWatch Logs accepts."
  }
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
