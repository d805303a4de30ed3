//! The routing AWS holds, as typed data: target groups and their targets, Route 53 record
//! sets. The adapters read AWS into these types and apply changes expressed in them.

use serde::Serialize;

string_enum! {
    /// How a target group names its targets (read from AWS, not configured).
    pub enum TargetType {
        Instance = "instance",
        Ip = "ip",
        /// Not something a database can be behind.
        Lambda = "lambda",
        Alb = "alb",
    }
}

string_enum! {
    /// AWS's target health state.
    pub enum TargetHealth {
        Initial = "initial",
        Healthy = "healthy",
        Unhealthy = "unhealthy",
        UnhealthyDraining = "unhealthy.draining",
        Unused = "unused",
        Draining = "draining",
        Unavailable = "unavailable",
    }
}

string_enum! {
    /// A record set's type.
    pub enum RecordType {
        A = "A",
        Aaaa = "AAAA",
        Cname = "CNAME",
        Txt = "TXT",
    }
}

string_enum! {
    /// The role of a failover-routing record.
    pub enum FailoverRole {
        Primary = "PRIMARY",
        Secondary = "SECONDARY",
    }
}

/// Which endpoint of a cluster a target group or record serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// The primary (read-write).
    Writer,
    /// The read endpoint (replicas within the lag bound).
    Reader,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Target {
    pub id: String,
    pub port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.id, self.port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisteredTarget {
    pub target: Target,
    pub state: TargetHealth,
}

impl RegisteredTarget {
    /// A draining target is on its way out: it counts as not registered.
    pub fn is_active(&self) -> bool {
        !matches!(
            self.state,
            TargetHealth::Draining | TargetHealth::UnhealthyDraining
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetGroupState {
    pub arn: String,
    pub target_type: TargetType,
    pub targets: Vec<RegisteredTarget>,
}

/// One Route 53 record set, reduced to what we manage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordSet {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: RecordType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverRole>,
    pub ttl: Option<i64>,
    pub values: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_id: Option<String>,
    /// A multivalue-answer record (the read endpoint's `multivalue` routing).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub multivalue: bool,
    /// An alias record has no values of its own; we never overwrite one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub alias: bool,
}

impl RecordSet {
    /// `name TYPE values [POLICY id]`, for reports and logs.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {} {}", self.name, self.rtype, self.values.join(","));
        if let Some(id) = &self.set_identifier {
            let policy = match (&self.failover, self.multivalue) {
                (Some(f), _) => f.as_str(),
                (None, true) => "MULTIVALUE",
                (None, false) => "",
            };
            s.push_str(&format!(" [{policy} {id}]"));
        }
        s
    }
}

/// The record sets at the configured name (all types), as Route 53 holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsState {
    pub zone_id: String,
    pub records: Vec<RecordSet>,
}

/// The short name of a target group ARN (`targetgroup/NAME/ID` -> `NAME`).
pub fn tg_name(arn: &str) -> &str {
    arn.rsplit('/').nth(1).unwrap_or(arn)
}
