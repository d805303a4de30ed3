//! The edges: the three ports the engine needs (Patroni, ELBv2, Route 53) as small traits,
//! shaped by what the engine does with them, and their adapters.
//!
//! - [`patroni_http`]: Patroni's REST API over HTTP(S);
//! - [`sdk`], [`elb_sdk`], [`route53_sdk`]: the AWS SDK;
//! - [`elb_batch`], [`route53_batch`]: batching over any adapter (DescribeTargetGroups by 20
//!   with a per-ARN retry; one ChangeResourceRecordSets per zone with a per-cluster retry);
//! - [`memory`] (testkit): an in-memory AWS that enforces the rules AWS enforces, with
//!   injected failures, for the engine's unit tests.

pub mod budget;
pub mod config_s3;
pub mod elb_batch;
pub mod elb_sdk;
#[cfg(any(test, feature = "testkit"))]
pub mod memory;
pub mod patroni_http;
pub mod route53_batch;
pub mod route53_sdk;
pub mod sdk;

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::config::NodeConfig;
use crate::domain::aws::{RecordSet, RegisteredTarget, Target, TargetType};
use crate::domain::drift::{HealthCheck, SettingsFix};
use crate::domain::patroni::{NodeObservation, PollError, Switch};
pub use crate::domain::report::AwsError;

/// Patroni's REST API: what one node says about itself and about its cluster.
#[async_trait]
pub trait Patroni: Send + Sync {
    /// `GET /patroni` and `GET /cluster` of one node. Never fails: an error is part of the
    /// observation. The adapter bounds each request; the engine bounds the whole poll.
    async fn observe(&self, node: &NodeConfig) -> NodeObservation;
    /// `GET /history`: the node's timeline switches (for the routing lag of a failover).
    async fn history(&self, node: &NodeConfig) -> Result<Vec<Switch>, PollError>;
}

/// What DescribeTargetGroups tells about one target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub target_type: TargetType,
    pub health_check: HealthCheck,
}

/// Elastic Load Balancing v2, the calls the router makes on target groups.
#[async_trait]
pub trait Elb: Send + Sync {
    /// One DescribeTargetGroups call for up to 20 ARNs; like AWS, it fails whole when one of
    /// them does not exist ([`elb_batch::describe_groups`] retries those one by one).
    async fn describe_target_groups(
        &self,
        arns: &[String],
    ) -> Result<Vec<(String, GroupInfo)>, AwsError>;
    /// DescribeTargetHealth: the registered targets and their state.
    async fn target_health(&self, arn: &str) -> Result<Vec<RegisteredTarget>, AwsError>;
    async fn register(&self, arn: &str, targets: &[Target]) -> Result<(), AwsError>;
    async fn deregister(&self, arn: &str, targets: &[Target]) -> Result<(), AwsError>;
    /// DescribeTargetGroupAttributes.
    async fn attributes(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError>;
    /// ModifyTargetGroupAttributes, then ModifyTargetGroup for the health check.
    async fn modify_settings(&self, arn: &str, fix: &SettingsFix) -> Result<(), AwsError>;
    /// DescribeTags for up to 20 target groups (the ownership markers and the fence).
    async fn tags(&self, arns: &[String]) -> Result<Vec<(String, Tags)>, AwsError>;
    async fn add_tags(&self, arn: &str, tags: &[(String, String)]) -> Result<(), AwsError>;
    async fn remove_tags(&self, arn: &str, keys: &[String]) -> Result<(), AwsError>;
}

/// A resource's tags.
pub type Tags = BTreeMap<String, String>;

/// A Route 53 change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeAction {
    /// Fails if the record set exists.
    Create,
    /// Must match the record set exactly, or the whole batch fails.
    Delete,
    /// Create or replace.
    Upsert,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordChange {
    pub action: ChangeAction,
    pub record: RecordSet,
}

/// Route 53, the calls the router makes on hosted zones.
#[async_trait]
pub trait Route53: Send + Sync {
    /// ListResourceRecordSets, following pagination: every record set at `name` (all types
    /// and set identifiers), or the whole zone when `name` is `None`.
    async fn list(&self, zone: &str, name: Option<&str>) -> Result<Vec<RecordSet>, AwsError>;
    /// One atomic ChangeResourceRecordSets call (at most 1,000 changes).
    async fn change(
        &self,
        zone: &str,
        changes: &[RecordChange],
        comment: &str,
    ) -> Result<(), AwsError>;
}
