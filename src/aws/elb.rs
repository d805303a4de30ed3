//! NLB target groups: read the target type and the registered targets; register and deregister.

use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetTypeEnum};

use super::{AwsClients, AwsError};
use crate::plan::{RegisteredTarget, Target, TargetGroupState, TargetType};

/// Read a target group's type and its registered targets (two read calls).
pub async fn read(aws: &AwsClients, arn: &str) -> Result<TargetGroupState, AwsError> {
    let groups = aws
        .elb
        .describe_target_groups()
        .target_group_arns(arn)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeTargetGroups", arn, &e))?;
    let group = groups.target_groups().first().ok_or_else(|| {
        AwsError::new(
            "DescribeTargetGroups",
            arn,
            Some("TargetGroupNotFound"),
            "no such target group".into(),
        )
    })?;
    let target_type = match group.target_type() {
        Some(TargetTypeEnum::Instance) => TargetType::Instance,
        Some(TargetTypeEnum::Ip) => TargetType::Ip,
        Some(other) => TargetType::Unsupported(other.as_str().to_string()),
        None => TargetType::Unsupported("(none)".into()),
    };
    let health = aws
        .elb
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeTargetHealth", arn, &e))?;
    let targets = health
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            let t = d.target()?;
            Some(RegisteredTarget {
                target: Target {
                    id: t.id()?.to_string(),
                    port: t.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
                },
                state: d
                    .target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "unknown".into()),
            })
        })
        .collect();
    Ok(TargetGroupState {
        arn: arn.to_string(),
        target_type,
        targets,
    })
}

fn descriptions(targets: &[Target]) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|t| {
            TargetDescription::builder()
                .id(&t.id)
                .port(i32::from(t.port))
                .build()
        })
        .collect()
}

pub async fn register(aws: &AwsClients, arn: &str, targets: &[Target]) -> Result<(), AwsError> {
    aws.elb
        .register_targets()
        .target_group_arn(arn)
        .set_targets(Some(descriptions(targets)))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("RegisterTargets", arn, &e))?;
    Ok(())
}

pub async fn deregister(aws: &AwsClients, arn: &str, targets: &[Target]) -> Result<(), AwsError> {
    aws.elb
        .deregister_targets()
        .target_group_arn(arn)
        .set_targets(Some(descriptions(targets)))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DeregisterTargets", arn, &e))?;
    Ok(())
}
