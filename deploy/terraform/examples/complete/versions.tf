# Example root for the patroni-router module: Terraform, provider, and the provider's endpoint (AWS or an emulator).
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100"
    }
  }
}

locals {
  emulated = var.aws_endpoint_url != ""
  # Every service this example and the module call, at one URL (moto, LocalStack).
  services = ["cloudformation", "cloudwatch", "ec2", "elbv2", "events", "iam", "lambda", "logs",
  "route53", "s3", "secretsmanager", "sns", "sqs", "sts"]
}

provider "aws" {
  region                      = var.region
  skip_credentials_validation = local.emulated
  skip_metadata_api_check     = local.emulated
  skip_region_validation      = local.emulated
  s3_use_path_style           = local.emulated

  dynamic "endpoints" {
    for_each = local.emulated ? [var.aws_endpoint_url] : []
    content {
      cloudformation = endpoints.value
      cloudwatch     = endpoints.value
      ec2            = endpoints.value
      elbv2          = endpoints.value
      events         = endpoints.value
      iam            = endpoints.value
      lambda         = endpoints.value
      logs           = endpoints.value
      route53        = endpoints.value
      s3             = endpoints.value
      secretsmanager = endpoints.value
      sns            = endpoints.value
      sqs            = endpoints.value
      sts            = endpoints.value
    }
  }
}
