//! NLB target groups: read target types (batched) and registered targets; register and deregister.

use std::collections::HashMap;

use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetTypeEnum};

use super::{AwsClients, AwsError};
use crate::plan::{RegisteredTarget, Target, TargetGroupState, TargetType};

/// How many ARNs one DescribeTargetGroups call asks for.
const DESCRIBE_BATCH: usize = 20;

fn target_type(t: Option<&TargetTypeEnum>) -> TargetType {
    match t {
        Some(TargetTypeEnum::Instance) => TargetType::Instance,
        Some(TargetTypeEnum::Ip) => TargetType::Ip,
        Some(other) => TargetType::Unsupported(other.as_str().to_string()),
        None => TargetType::Unsupported("(none)".into()),
    }
}

/// The target type of each target group, a batch of ARNs per DescribeTargetGroups call. A
/// batch fails whole if one ARN does not exist; then its ARNs are asked one by one, so one
/// bad ARN never hides the others.
pub async fn describe_types(
    aws: &AwsClients,
    arns: &[String],
) -> HashMap<String, Result<TargetType, AwsError>> {
    let mut out = HashMap::new();
    for batch in arns.chunks(DESCRIBE_BATCH) {
        match describe_batch(aws, batch).await {
            Ok(found) => out.extend(found),
            Err(_) if batch.len() > 1 => {
                for arn in batch {
                    match describe_batch(aws, std::slice::from_ref(arn)).await {
                        Ok(found) => out.extend(found),
                        Err(e) => {
                            out.insert(arn.clone(), Err(e));
                        }
                    }
                }
            }
            Err(e) => {
                for arn in batch {
                    out.insert(arn.clone(), Err(e.clone()));
                }
            }
        }
    }
    out
}

async fn describe_batch(
    aws: &AwsClients,
    arns: &[String],
) -> Result<Vec<(String, Result<TargetType, AwsError>)>, AwsError> {
    let resource = arns.join(", ");
    let mut found: HashMap<String, TargetType> = HashMap::new();
    let mut marker = None;
    loop {
        let out = aws
            .elb
            .describe_target_groups()
            .set_target_group_arns(Some(arns.to_vec()))
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeTargetGroups", &resource, &e))?;
        for g in out.target_groups() {
            if let Some(arn) = g.target_group_arn() {
                found.insert(arn.to_string(), target_type(g.target_type()));
            }
        }
        marker = out.next_marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    Ok(arns
        .iter()
        .map(|arn| {
            let t = found.remove(arn).ok_or_else(|| {
                AwsError::new(
                    "DescribeTargetGroups",
                    arn,
                    Some("TargetGroupNotFound"),
                    "no such target group".into(),
                )
            });
            (arn.clone(), t)
        })
        .collect())
}

/// The registered targets of a target group whose type is known (one read call).
pub async fn read_targets(
    aws: &AwsClients,
    arn: &str,
    target_type: TargetType,
) -> Result<TargetGroupState, AwsError> {
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
