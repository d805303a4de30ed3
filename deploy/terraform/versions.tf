# patroni-router Terraform module: Terraform and provider requirements.
terraform {
  # Preconditions and check-free validation only: 1.5 is enough.
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100"
    }
  }
}

data "aws_partition" "current" {}
