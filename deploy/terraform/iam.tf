# patroni-router Terraform module: the one role both functions run as (the same least privilege as template.yaml).

locals {
  partition = data.aws_partition.current.partition
  zone_arns = [for id in var.hosted_zone_ids : "arn:${local.partition}:route53:::hostedzone/${id}"]
  # bucket/key of s3://bucket/key ("" when the config is inline).
  config_s3_object = trimprefix(var.config_s3_uri, "s3://")

  # Keep in step with RouterRole in template.yaml: scripts/check_policy_parity.py compares them.
  routing_statements = concat(
    [
      {
        # Describe* calls of Elastic Load Balancing do not support resource-level permissions.
        Effect = "Allow"
        Action = [
          "elasticloadbalancing:DescribeTargetGroups",
          "elasticloadbalancing:DescribeTargetHealth",
          "elasticloadbalancing:DescribeTargetGroupAttributes",
          "elasticloadbalancing:DescribeTags",
        ]
        Resource = "*"
      },
      {
        # A scheduled run that failed lands in the on-failure queue.
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = aws_sqs_queue.failed.arn
      },
    ],
    length(var.target_group_arns) == 0 ? [] : [{
      # Targets, and the ownership marker and fence (target-group tags).
      Effect = "Allow"
      Action = [
        "elasticloadbalancing:RegisterTargets",
        "elasticloadbalancing:DeregisterTargets",
        "elasticloadbalancing:AddTags",
        "elasticloadbalancing:RemoveTags",
      ]
      Resource = var.target_group_arns
    }],
    length(var.target_group_arns) == 0 || !var.manage_target_group_settings ? [] : [{
      Effect = "Allow"
      Action = [
        "elasticloadbalancing:ModifyTargetGroupAttributes",
        "elasticloadbalancing:ModifyTargetGroup",
      ]
      Resource = var.target_group_arns
    }],
    length(local.zone_arns) == 0 ? [] : [{
      Effect   = "Allow"
      Action   = ["route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets"]
      Resource = local.zone_arns
    }],
    var.config_s3_uri == "" ? [] : [{
      Effect   = "Allow"
      Action   = ["s3:GetObject"]
      Resource = "arn:${local.partition}:s3:::${local.config_s3_object}"
    }],
  )
}

resource "aws_iam_role" "router" {
  name = "${var.name}-patroni-router"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

# Logs and the VPC network interfaces (the same managed policy SAM's template attaches).
resource "aws_iam_role_policy_attachment" "vpc_access" {
  role       = aws_iam_role.router.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_iam_role_policy" "routing" {
  name = "routing"
  role = aws_iam_role.router.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.routing_statements
  })
}
