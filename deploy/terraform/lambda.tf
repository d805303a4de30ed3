# patroni-router Terraform module: the two functions, their log groups, the schedule and the function URL.

locals {
  router_name  = "${var.name}-patroni-router"
  webhook_name = "${var.name}-patroni-router-webhook"
  s3_config    = var.config_s3_uri != ""
  # Both functions: the config (inline or in S3) and the metrics namespace.
  common_env = merge(
    { ROUTER_METRICS_NAMESPACE = var.metrics_namespace, ROUTER_SHARD = var.shard },
    local.s3_config ? { ROUTER_CONFIG_S3 = var.config_s3_uri } : { ROUTER_CONFIG = var.router_config },
  )
  hmac = var.webhook_auth == "hmac"
}

# hmac only: the secret, read at apply time (it lands in the state; protect the state).
data "aws_secretsmanager_secret_version" "webhook" {
  count     = local.hmac ? 1 : 0
  secret_id = var.webhook_secret_arn
}

# Created before the functions, so Lambda never creates them without retention.
resource "aws_cloudwatch_log_group" "router" {
  name              = "/aws/lambda/${local.router_name}"
  retention_in_days = var.log_retention_in_days
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "webhook" {
  name              = "/aws/lambda/${local.webhook_name}"
  retention_in_days = var.log_retention_in_days
  tags              = var.tags
}

# The schedule and direct invokes (plan/reconcile). No function URL.
resource "aws_lambda_function" "router" {
  function_name    = local.router_name
  role             = aws_iam_role.router.arn
  filename         = var.lambda_zip
  source_code_hash = filebase64sha256(var.lambda_zip)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = [var.architecture]
  memory_size      = 128
  # A webhook waits up to 10 s for Patroni to confirm the new primary, then reconciles.
  timeout = 30
  # One scheduled reconcile at a time, and a slot no webhook can take.
  reserved_concurrent_executions = 1
  environment {
    variables = local.common_env
  }
  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = var.security_group_ids
  }
  tags = var.tags

  depends_on = [
    aws_cloudwatch_log_group.router,
    aws_iam_role_policy.routing,
    aws_iam_role_policy_attachment.vpc_access,
  ]

  lifecycle {
    precondition {
      condition     = (var.router_config == "") != (var.config_s3_uri == "")
      error_message = "Set exactly one of router_config (inline JSON) and config_s3_uri (s3://bucket/key)."
    }
  }
}

# The Patroni callbacks, through the function URL only; the same code and role.
resource "aws_lambda_function" "webhook" {
  function_name    = local.webhook_name
  role             = aws_iam_role.router.arn
  filename         = var.lambda_zip
  source_code_hash = filebase64sha256(var.lambda_zip)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = [var.architecture]
  memory_size      = 128
  timeout          = 30
  # All a flood can take; the router function keeps its own slot.
  reserved_concurrent_executions = var.webhook_concurrency
  environment {
    variables = merge(
      local.common_env,
      { ROUTER_WEBHOOK_AUTH = var.webhook_auth },
      local.hmac ? { ROUTER_WEBHOOK_SECRET = data.aws_secretsmanager_secret_version.webhook[0].secret_string } : {},
    )
  }
  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = var.security_group_ids
  }
  tags = var.tags

  depends_on = [
    aws_cloudwatch_log_group.webhook,
    aws_iam_role_policy.routing,
    aws_iam_role_policy_attachment.vpc_access,
  ]

  lifecycle {
    precondition {
      condition     = !local.hmac || var.webhook_secret_arn != ""
      error_message = "webhook_auth = \"hmac\" needs webhook_secret_arn (without a secret every webhook would get 401)."
    }
  }
}

resource "aws_lambda_function_event_invoke_config" "router" {
  function_name = aws_lambda_function.router.function_name
  # The schedule runs again in a minute: no async retries piling up behind concurrency 1.
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 120
  # A scheduled run that failed (crash, timeout, throttled) lands here, with its error.
  destination_config {
    on_failure {
      destination = aws_sqs_queue.failed.arn
    }
  }
}

resource "aws_cloudwatch_event_rule" "every" {
  name                = "${local.router_name}-every"
  description         = "patroni-router safety-net reconcile"
  schedule_expression = var.schedule_expression
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "router" {
  rule = aws_cloudwatch_event_rule.every.name
  arn  = aws_lambda_function.router.arn
}

resource "aws_lambda_permission" "schedule" {
  statement_id  = "AllowSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.router.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.every.arn
}

# iam: AWS_IAM (callers need lambda:InvokeFunctionUrl and lambda:InvokeFunction on the webhook
# function). hmac: NONE, made public by the two statements below.
resource "aws_lambda_function_url" "webhook" {
  function_name      = aws_lambda_function.webhook.function_name
  authorization_type = local.hmac ? "NONE" : "AWS_IAM"
}

# hmac: a public URL needs lambda:InvokeFunctionUrl (for AuthType NONE) and, since October 2025,
# lambda:InvokeFunction granted only through the URL (lambda:InvokedViaFunctionUrl).
# aws_lambda_permission cannot express the second before provider 6.29, and the provider adds the
# first itself only when it creates a URL as NONE (not when iam switches to hmac), so both live in
# a two-resource CloudFormation stack: created with hmac, removed with it.
resource "aws_cloudformation_stack" "webhook_public_access" {
  count = local.hmac ? 1 : 0
  name  = "${local.webhook_name}-public-url"
  template_body = jsonencode({
    Description = "patroni-router: public access to the webhook function, only through its function URL (hmac mode)"
    Resources = {
      PublicUrl = {
        Type = "AWS::Lambda::Permission"
        Properties = {
          FunctionName        = aws_lambda_function.webhook.function_name
          Action              = "lambda:InvokeFunctionUrl"
          Principal           = "*"
          FunctionUrlAuthType = "NONE"
        }
      }
      PublicInvokeViaUrl = {
        Type = "AWS::Lambda::Permission"
        Properties = {
          FunctionName          = aws_lambda_function.webhook.function_name
          Action                = "lambda:InvokeFunction"
          Principal             = "*"
          InvokedViaFunctionUrl = true
        }
      }
    }
  })
  tags = var.tags
}
