//! What Patroni's REST API tells us, as typed data: the shapes of `GET /patroni` and
//! `GET /cluster`, their parsers, and one node's observation (answer or error). The HTTP side
//! is an adapter (`adapters::patroni_http`); nothing here does I/O, so `decide` is tested on
//! fixtures.

mod history;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

pub use history::{Switch, parse_history, promoted_at, unix_ms};

string_enum! {
    /// A node's role as its own `GET /patroni` reports it.
    pub enum Role {
        Primary = "primary",
        /// Patroni < 4 calls the primary `master`.
        Master = "master",
        Replica = "replica",
        StandbyLeader = "standby_leader",
        Demoted = "demoted",
        Uninitialized = "uninitialized",
    }
}

impl Role {
    /// A writable primary: `primary`, or legacy `master`.
    pub fn is_primary(&self) -> bool {
        matches!(self, Role::Primary | Role::Master)
    }
}

string_enum! {
    /// A member's role in the DCS view (`GET /cluster`).
    pub enum MemberRole {
        Leader = "leader",
        /// Patroni < 4.
        Master = "master",
        StandbyLeader = "standby_leader",
        Replica = "replica",
        SyncStandby = "sync_standby",
        QuorumStandby = "quorum_standby",
    }
}

string_enum! {
    /// PostgreSQL's state as Patroni reports it (own view or DCS view).
    pub enum PgState {
        Running = "running",
        Streaming = "streaming",
        Starting = "starting",
        Stopping = "stopping",
        Stopped = "stopped",
        Crashed = "crashed",
        Restarting = "restarting",
    }
}

/// `GET /patroni`: a node's own view of itself.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct PatroniStatus {
    pub state: PgState,
    pub role: Role,
    #[serde(default)]
    pub timeline: Option<u64>,
    pub patroni: PatroniIdentity,
    /// Set when the node could not reach the DCS (failsafe mode keeps a primary running then).
    #[serde(default)]
    pub cluster_unlocked: bool,
    #[serde(default)]
    pub failsafe_mode_is_active: bool,
    #[serde(default)]
    pub replication: Vec<ReplicationConnection>,
    /// PostgreSQL's system identifier: the same on every member of one database (and its
    /// physical replicas), different for a database initialised anew.
    #[serde(default)]
    pub database_system_identifier: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct PatroniIdentity {
    #[serde(default)]
    pub version: Option<String>,
    pub scope: String,
    pub name: String,
}

/// One row of `pg_stat_replication` as the primary reports it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ReplicationConnection {
    #[serde(default)]
    pub application_name: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub sync_state: Option<String>,
}

/// `GET /cluster`: the DCS's view of the whole cluster, as one node read it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ClusterView {
    #[serde(default)]
    pub scope: Option<String>,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Member {
    pub name: String,
    pub role: MemberRole,
    #[serde(default)]
    pub state: Option<PgState>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub timeline: Option<u64>,
    #[serde(default)]
    pub lag: Option<Lag>,
    #[serde(default)]
    pub tags: BTreeMap<String, serde_json::Value>,
}

/// Replication lag in bytes; Patroni writes the string "unknown" when it cannot tell.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Lag {
    Bytes(u64),
    #[serde(serialize_with = "serialize_unknown")]
    Unknown,
}

fn serialize_unknown<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("unknown")
}

impl<'de> Deserialize<'de> for Lag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Lag, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => match n.as_u64() {
                Some(b) => Ok(Lag::Bytes(b)),
                None => Ok(Lag::Unknown),
            },
            serde_json::Value::String(_) | serde_json::Value::Null => Ok(Lag::Unknown),
            other => Err(serde::de::Error::custom(format!(
                "lag must be a number of bytes or \"unknown\", got {other}"
            ))),
        }
    }
}

impl fmt::Display for Lag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lag::Bytes(b) => write!(f, "{b}"),
            Lag::Unknown => f.write_str("unknown"),
        }
    }
}

impl Lag {
    pub fn bytes(self) -> Option<u64> {
        match self {
            Lag::Bytes(b) => Some(b),
            Lag::Unknown => None,
        }
    }
}

impl Member {
    /// The DCS leader: `leader`, `standby_leader`, or `master` in old Patroni versions.
    pub fn is_leader(&self) -> bool {
        matches!(
            self.role,
            MemberRole::Leader | MemberRole::StandbyLeader | MemberRole::Master
        )
    }

    /// A replica that is streaming (Patroni 4) or running (Patroni 3) from the leader.
    pub fn is_streaming_replica(&self) -> bool {
        matches!(
            self.role,
            MemberRole::Replica | MemberRole::SyncStandby | MemberRole::QuorumStandby
        ) && matches!(self.state, Some(PgState::Streaming | PgState::Running))
    }

    /// A Patroni tag such as `nofailover` or `noloadbalance`: set when true (YAML booleans
    /// reach the REST API as JSON `true`; a string "true"/"yes"/"on" counts too).
    pub fn tag_is_set(&self, tag: &str) -> bool {
        match self.tags.get(tag) {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => {
                matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1")
            }
            _ => false,
        }
    }

    pub fn is_sync_standby(&self) -> bool {
        matches!(
            self.role,
            MemberRole::SyncStandby | MemberRole::QuorumStandby
        )
    }
}

/// Why a node gave us nothing usable. Plain data: `decide` reasons about it, the report prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum PollError {
    /// No answer within the request timeout (or the poll's deadline).
    Timeout(String),
    /// The TCP/TLS connection failed (refused, reset, certificate rejected, ...).
    Connect(String),
    /// An HTTP status we do not read a body from (e.g. 404, 401, a redirect).
    Status(u16),
    /// The body exceeded the size we accept.
    TooLarge(usize),
    /// The body was not the JSON Patroni sends.
    Parse(String),
    /// Anything else the HTTP client reported.
    Other(String),
}

impl fmt::Display for PollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollError::Timeout(d) => write!(f, "timed out ({d})"),
            PollError::Connect(d) => write!(f, "connection failed: {d}"),
            PollError::Status(s) => write!(f, "unexpected HTTP status {s}"),
            PollError::TooLarge(max) => write!(f, "response larger than {max} bytes"),
            PollError::Parse(d) => write!(f, "not a Patroni answer: {d}"),
            PollError::Other(d) => write!(f, "{d}"),
        }
    }
}

/// Everything we learnt from one configured node in one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeObservation {
    /// The configured node name (not what the node claims: that is in `patroni`).
    pub name: String,
    pub patroni: Result<PatroniStatus, PollError>,
    pub cluster: Result<ClusterView, PollError>,
}

impl NodeObservation {
    /// The same error for both endpoints (the node could not be asked at all).
    pub fn failed(name: &str, e: PollError) -> NodeObservation {
        NodeObservation {
            name: name.to_string(),
            patroni: Err(e.clone()),
            cluster: Err(e),
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, PollError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path == "?" {
            PollError::Parse(inner.to_string())
        } else {
            PollError::Parse(format!("field `{path}`: {inner}"))
        }
    })
}

/// Parse a `GET /patroni` body.
pub fn parse_patroni(body: &[u8]) -> Result<PatroniStatus, PollError> {
    parse(body)
}

/// Parse a `GET /cluster` body.
pub fn parse_cluster(body: &[u8]) -> Result<ClusterView, PollError> {
    parse(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::fixture;

    #[test]
    fn real_patroni_answers_parse() {
        let leader = parse_patroni(&fixture("patroni-leader.json")).expect("leader");
        assert!(leader.role.is_primary());
        assert_eq!(leader.patroni.scope, "pgha");
        assert_eq!(leader.patroni.name, "pg1");
        assert_eq!(leader.replication.len(), 2);
        let replica = parse_patroni(&fixture("patroni-replica.json")).expect("replica");
        assert_eq!(replica.role, Role::Replica);
        let failsafe =
            parse_patroni(&fixture("patroni-leader-failsafe-dcs-down.json")).expect("fs");
        assert!(failsafe.cluster_unlocked && failsafe.failsafe_mode_is_active);
    }

    #[test]
    fn real_cluster_answers_parse() {
        let c = parse_cluster(&fixture("cluster.json")).expect("cluster");
        assert_eq!(c.members.len(), 3);
        assert!(c.members[0].is_leader());
        assert!(c.members[1].is_streaming_replica());
        assert_eq!(c.members[1].lag, Some(Lag::Bytes(0)));
        let c = parse_cluster(&fixture("cluster-after-failover-one-down.json")).expect("after");
        assert_eq!(c.members.len(), 2);
    }

    #[test]
    fn unknown_lag_and_legacy_master_are_understood() {
        let c = parse_cluster(
            br#"{"members":[{"name":"a","role":"master","state":"running"},
                {"name":"b","role":"replica","state":"running","lag":"unknown"}]}"#,
        )
        .expect("parses");
        assert!(c.members[0].is_leader());
        assert_eq!(c.members[1].lag, Some(Lag::Unknown));
        assert!(c.members[1].is_streaming_replica());
    }

    #[test]
    fn unknown_roles_and_states_are_kept_as_sent() {
        let s = parse_patroni(
            br#"{"state":"running custom bootstrap script","role":"witness",
                 "patroni":{"scope":"s","name":"n"}}"#,
        )
        .expect("parses");
        assert_eq!(s.role, Role::Other("witness".into()));
        assert_eq!(s.state.to_string(), "running custom bootstrap script");
        assert!(!s.role.is_primary());
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!(json["role"], "witness", "round-trips as sent");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e =
            parse_patroni(br#"{"state":"running","role":7,"patroni":{"scope":"s","name":"n"}}"#)
                .unwrap_err();
        assert!(e.to_string().contains("role"), "{e}");
        let e =
            parse_cluster(br#"{"members":[{"name":"a","role":"leader","lag":true}]}"#).unwrap_err();
        assert!(e.to_string().contains("members[0].lag"), "{e}");
    }

    #[test]
    fn garbage_is_a_parse_error() {
        for body in [
            &b""[..],
            b"{",
            b"<html>",
            b"[]",
            b"null",
            b"{\"members\": {}}",
        ] {
            assert!(parse_cluster(body).is_err());
            assert!(parse_patroni(body).is_err());
        }
    }
}
