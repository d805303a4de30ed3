//! NLB target groups: read target types (batched) and registered targets; register and deregister.

use std::collections::HashMap;

use aws_sdk_elasticloadbalancingv2::types::{
    ProtocolEnum, TargetDescription, TargetGroupAttribute, TargetTypeEnum,
};

use super::{AwsClients, AwsError};
use crate::drift::{HealthCheck, SettingsFix, TgSettings};
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

/// What DescribeTargetGroups tells about one target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub target_type: TargetType,
    pub health_check: HealthCheck,
}

/// Each target group's type and health check, a batch of ARNs per DescribeTargetGroups call. A
/// batch fails whole if one ARN does not exist; then its ARNs are asked one by one, so one
/// bad ARN never hides the others.
pub async fn describe_groups(
    aws: &AwsClients,
    arns: &[String],
) -> HashMap<String, Result<GroupInfo, AwsError>> {
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
) -> Result<Vec<(String, Result<GroupInfo, AwsError>)>, AwsError> {
    let resource = arns.join(", ");
    let mut found: HashMap<String, GroupInfo> = HashMap::new();
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
                let info = GroupInfo {
                    target_type: target_type(g.target_type()),
                    health_check: HealthCheck {
                        protocol: g.health_check_protocol().map(|p| p.as_str().to_string()),
                        port: g.health_check_port().map(str::to_string),
                        path: g.health_check_path().map(str::to_string),
                        interval_seconds: g.health_check_interval_seconds(),
                        healthy_threshold: g.healthy_threshold_count(),
                        unhealthy_threshold: g.unhealthy_threshold_count(),
                    },
                };
                found.insert(arn.to_string(), info);
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

/// The settings drift is checked on: the health check (from DescribeTargetGroups, read with
/// the run's batch) and the attributes (DescribeTargetGroupAttributes).
pub async fn read_settings(
    aws: &AwsClients,
    arn: &str,
    health_check: HealthCheck,
) -> Result<TgSettings, AwsError> {
    let attrs = aws
        .elb
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeTargetGroupAttributes", arn, &e))?;
    Ok(TgSettings {
        attributes: attrs
            .attributes()
            .iter()
            .filter_map(|a| Some((a.key()?.to_string(), a.value()?.to_string())))
            .collect(),
        health_check,
    })
}

/// Apply a settings fix: attributes, then the health check.
pub async fn apply_settings(
    aws: &AwsClients,
    arn: &str,
    fix: &SettingsFix,
) -> Result<(), AwsError> {
    if !fix.attributes.is_empty() {
        let attributes = fix
            .attributes
            .iter()
            .map(|(k, v)| TargetGroupAttribute::builder().key(k).value(v).build())
            .collect();
        aws.elb
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .set_attributes(Some(attributes))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ModifyTargetGroupAttributes", arn, &e))?;
    }
    if let Some(hc) = &fix.health_check {
        aws.elb
            .modify_target_group()
            .target_group_arn(arn)
            .set_health_check_protocol(hc.protocol.as_deref().map(ProtocolEnum::from))
            .set_health_check_port(hc.port.clone())
            .set_health_check_path(hc.path.clone())
            .set_health_check_interval_seconds(hc.interval_seconds)
            .set_healthy_threshold_count(hc.healthy_threshold)
            .set_unhealthy_threshold_count(hc.unhealthy_threshold)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ModifyTargetGroup", arn, &e))?;
    }
    Ok(())
}
