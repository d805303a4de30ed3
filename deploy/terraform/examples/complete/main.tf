# Example root for the patroni-router module: a VPC, target groups, a zone, the config, and the module.

data "aws_caller_identity" "current" {}

locals {
  nodes      = { pg1 = "10.42.1.10", pg2 = "10.42.1.11", pg3 = "10.42.2.12" }
  writer_arn = one(aws_lb_target_group.writer[*].arn)
  reader_arn = one(aws_lb_target_group.reader[*].arn)
  zone_id    = one(aws_route53_zone.pg[*].zone_id)
  # merge() skips the null of a part that is switched off.
  cluster = merge(
    {
      scope = "pgha"
      nodes = [for n, ip in local.nodes : { name = n, api_url = "http://${ip}:8008", address = ip }]
    },
    var.route_target_groups ? {
      target_group = { arn = local.writer_arn, port = 5432, strategy = "primary-only", manage_settings = var.manage_target_group_settings }
      replicas     = { target_group = { arn = local.reader_arn, port = 5432, manage_settings = var.manage_target_group_settings } }
    } : null,
    var.route_zones ? {
      dns = { hosted_zone_id = local.zone_id, record_name = "db.pg.example.internal.", ttl = 10 }
    } : null,
  )
  config = jsonencode({ clusters = [local.cluster] })
  # What the module is given; scripts/check_policy_parity.py feeds the same to template.yaml.
  module_inputs = {
    target_group_arns            = var.route_target_groups ? [local.writer_arn, local.reader_arn] : []
    hosted_zone_ids              = var.route_zones ? [local.zone_id] : []
    manage_target_group_settings = var.manage_target_group_settings
    config_s3_uri                = var.config_source == "s3" ? "s3://${one(aws_s3_object.config[*].bucket)}/${one(aws_s3_object.config[*].key)}" : ""
    webhook_auth                 = var.webhook_auth
  }
}

resource "aws_vpc" "main" {
  cidr_block = "10.42.0.0/16"
  tags       = { Name = var.name }
}

resource "aws_subnet" "private" {
  for_each          = { a = "10.42.1.0/24", b = "10.42.2.0/24" }
  vpc_id            = aws_vpc.main.id
  cidr_block        = each.value
  availability_zone = "${var.region}${each.key}"
  tags              = { Name = "${var.name}-${each.key}" }
}

# The functions' security group: out to Patroni (8008) and to the AWS APIs (443).
resource "aws_security_group" "router" {
  name        = "${var.name}-router"
  description = "patroni-router functions"
  vpc_id      = aws_vpc.main.id
  egress {
    description = "Patroni REST API"
    from_port   = 8008
    to_port     = 8008
    protocol    = "tcp"
    cidr_blocks = [aws_vpc.main.cidr_block]
  }
  egress {
    description = "AWS APIs (through NAT or VPC endpoints)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# The Patroni nodes' security group must let the router in on 8008.
resource "aws_security_group" "patroni" {
  name        = "${var.name}-patroni"
  description = "Patroni nodes"
  vpc_id      = aws_vpc.main.id
  ingress {
    description     = "patroni-router to the REST API"
    from_port       = 8008
    to_port         = 8008
    protocol        = "tcp"
    security_groups = [aws_security_group.router.id]
  }
}

resource "aws_lb_target_group" "writer" {
  count       = var.route_target_groups ? 1 : 0
  name        = "${var.name}-w"
  port        = 5432
  protocol    = "TCP"
  target_type = "ip"
  vpc_id      = aws_vpc.main.id
}

resource "aws_lb_target_group" "reader" {
  count       = var.route_target_groups ? 1 : 0
  name        = "${var.name}-r"
  port        = 5432
  protocol    = "TCP"
  target_type = "ip"
  vpc_id      = aws_vpc.main.id
}

resource "aws_route53_zone" "pg" {
  count = var.route_zones ? 1 : 0
  name  = "pg.example.internal"
  vpc {
    vpc_id = aws_vpc.main.id
  }
  # moto's GetHostedZone drops a private zone's VPCs, so the plan would re-add it every time
  # (the same setting Terraform's docs give for zones with aws_route53_zone_association).
  lifecycle {
    ignore_changes = [vpc]
  }
}

resource "aws_s3_bucket" "config" {
  count         = var.config_source == "s3" ? 1 : 0
  bucket        = lower("${var.name}-config-${data.aws_caller_identity.current.account_id}")
  force_destroy = true
}

resource "aws_s3_object" "config" {
  count        = var.config_source == "s3" ? 1 : 0
  bucket       = aws_s3_bucket.config[0].id
  key          = "patroni-router/config.json"
  content      = local.config
  content_type = "application/json"
}

resource "aws_secretsmanager_secret" "webhook" {
  count                   = var.webhook_auth == "hmac" ? 1 : 0
  name                    = "${var.name}/webhook-secret"
  recovery_window_in_days = 0
  lifecycle {
    precondition {
      condition     = length(var.webhook_secret) >= 16
      error_message = "webhook_auth = \"hmac\" needs webhook_secret (16+ bytes, e.g. openssl rand -hex 32)."
    }
  }
}

resource "aws_secretsmanager_secret_version" "webhook" {
  count         = length(aws_secretsmanager_secret.webhook)
  secret_id     = aws_secretsmanager_secret.webhook[0].id
  secret_string = var.webhook_secret
}

module "router" {
  source = "../.."

  name               = var.name
  lambda_zip         = var.lambda_zip
  architecture       = var.architecture
  router_config      = var.config_source == "inline" ? local.config : ""
  config_s3_uri      = local.module_inputs.config_s3_uri
  target_group_arns  = local.module_inputs.target_group_arns
  hosted_zone_ids    = local.module_inputs.hosted_zone_ids
  subnet_ids         = [for s in aws_subnet.private : s.id]
  security_group_ids = [aws_security_group.router.id]

  manage_target_group_settings = var.manage_target_group_settings
  webhook_auth                 = var.webhook_auth
  webhook_secret_arn           = length(aws_secretsmanager_secret_version.webhook) > 0 ? aws_secretsmanager_secret_version.webhook[0].arn : ""
  alarm_email                  = var.alarm_email
  tags                         = { Project = "patroni-router", Example = "complete" }
}
