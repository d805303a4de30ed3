//! Elastic Load Balancing v2 through the AWS SDK: the [`Elb`] port.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    ProtocolEnum, Tag, TargetDescription, TargetGroup, TargetGroupAttribute,
};

use std::sync::Arc;

use super::budget::Budget;
use super::{AwsError, Elb, GroupInfo, Tags};
use crate::domain::aws::{RegisteredTarget, Target, TargetHealth, TargetType};
use crate::domain::drift::{HealthCheck, SettingsFix};

/// The SDK client as the [`Elb`] port; every request waits for the budget.
#[derive(Clone)]
pub struct SdkElb {
    pub client: Client,
    pub budget: Arc<Budget>,
}

fn group_info(g: &TargetGroup) -> GroupInfo {
    GroupInfo {
        target_type: g
            .target_type()
            .map_or(TargetType::Other("(none)".into()), |t| {
                TargetType::from(t.as_str())
            }),
        health_check: HealthCheck {
            protocol: g.health_check_protocol().map(|p| p.as_str().to_string()),
            port: g.health_check_port().map(str::to_string),
            path: g.health_check_path().map(str::to_string),
            interval_seconds: g.health_check_interval_seconds(),
            healthy_threshold: g.healthy_threshold_count(),
            unhealthy_threshold: g.unhealthy_threshold_count(),
        },
    }
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

#[async_trait]
impl Elb for SdkElb {
    async fn describe_target_groups(
        &self,
        arns: &[String],
    ) -> Result<Vec<(String, GroupInfo)>, AwsError> {
        let resource = arns.join(", ");
        let mut found = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .budget
                .sent(
                    "DescribeTargetGroups",
                    &resource,
                    self.client
                        .describe_target_groups()
                        .set_target_group_arns(Some(arns.to_vec()))
                        .set_marker(marker)
                        .send(),
                )
                .await?;
            for g in out.target_groups() {
                if let Some(arn) = g.target_group_arn() {
                    found.push((arn.to_string(), group_info(g)));
                }
            }
            marker = out.next_marker().map(str::to_string);
            if marker.is_none() {
                return Ok(found);
            }
        }
    }

    async fn target_health(&self, arn: &str) -> Result<Vec<RegisteredTarget>, AwsError> {
        let health = self
            .budget
            .sent(
                "DescribeTargetHealth",
                arn,
                self.client
                    .describe_target_health()
                    .target_group_arn(arn)
                    .send(),
            )
            .await?;
        Ok(health
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
                        .map_or(TargetHealth::Other("unknown".into()), |s| {
                            TargetHealth::from(s.as_str())
                        }),
                })
            })
            .collect())
    }

    async fn register(&self, arn: &str, targets: &[Target]) -> Result<(), AwsError> {
        self.budget
            .sent(
                "RegisterTargets",
                arn,
                self.client
                    .register_targets()
                    .target_group_arn(arn)
                    .set_targets(Some(descriptions(targets)))
                    .send(),
            )
            .await?;
        Ok(())
    }

    async fn deregister(&self, arn: &str, targets: &[Target]) -> Result<(), AwsError> {
        self.budget
            .sent(
                "DeregisterTargets",
                arn,
                self.client
                    .deregister_targets()
                    .target_group_arn(arn)
                    .set_targets(Some(descriptions(targets)))
                    .send(),
            )
            .await?;
        Ok(())
    }

    async fn attributes(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let attrs = self
            .budget
            .sent(
                "DescribeTargetGroupAttributes",
                arn,
                self.client
                    .describe_target_group_attributes()
                    .target_group_arn(arn)
                    .send(),
            )
            .await?;
        Ok(attrs
            .attributes()
            .iter()
            .filter_map(|a| Some((a.key()?.to_string(), a.value()?.to_string())))
            .collect())
    }

    async fn modify_settings(&self, arn: &str, fix: &SettingsFix) -> Result<(), AwsError> {
        if !fix.attributes.is_empty() {
            let attributes = fix
                .attributes
                .iter()
                .map(|(k, v)| TargetGroupAttribute::builder().key(k).value(v).build())
                .collect();
            self.budget
                .sent(
                    "ModifyTargetGroupAttributes",
                    arn,
                    self.client
                        .modify_target_group_attributes()
                        .target_group_arn(arn)
                        .set_attributes(Some(attributes))
                        .send(),
                )
                .await?;
        }
        if let Some(hc) = &fix.health_check {
            self.budget
                .sent(
                    "ModifyTargetGroup",
                    arn,
                    self.client
                        .modify_target_group()
                        .target_group_arn(arn)
                        .set_health_check_protocol(hc.protocol.as_deref().map(ProtocolEnum::from))
                        .set_health_check_port(hc.port.clone())
                        .set_health_check_path(hc.path.clone())
                        .set_health_check_interval_seconds(hc.interval_seconds)
                        .set_healthy_threshold_count(hc.healthy_threshold)
                        .set_unhealthy_threshold_count(hc.unhealthy_threshold)
                        .send(),
                )
                .await?;
        }
        Ok(())
    }

    async fn tags(&self, arns: &[String]) -> Result<Vec<(String, Tags)>, AwsError> {
        let out = self
            .budget
            .sent(
                "DescribeTags",
                &arns.join(", "),
                self.client
                    .describe_tags()
                    .set_resource_arns(Some(arns.to_vec()))
                    .send(),
            )
            .await?;
        Ok(out
            .tag_descriptions()
            .iter()
            .filter_map(|d| {
                let tags = d
                    .tags()
                    .iter()
                    .filter_map(|t| {
                        Some((
                            t.key()?.to_string(),
                            t.value().unwrap_or_default().to_string(),
                        ))
                    })
                    .collect();
                Some((d.resource_arn()?.to_string(), tags))
            })
            .collect())
    }

    async fn add_tags(&self, arn: &str, tags: &[(String, String)]) -> Result<(), AwsError> {
        let tags = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        self.budget
            .sent(
                "AddTags",
                arn,
                self.client
                    .add_tags()
                    .resource_arns(arn)
                    .set_tags(Some(tags))
                    .send(),
            )
            .await?;
        Ok(())
    }

    async fn remove_tags(&self, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        self.budget
            .sent(
                "RemoveTags",
                arn,
                self.client
                    .remove_tags()
                    .resource_arns(arn)
                    .set_tag_keys(Some(keys.to_vec()))
                    .send(),
            )
            .await?;
        Ok(())
    }
}
