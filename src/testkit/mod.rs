//! Test support shared by the unit tests, the integration tests, the bench and the local
//! invoke (built with the `testkit` feature; never part of the router itself): builders of
//! configs, Patroni answers and observations; the one fake Patroni ([`fake_patroni`]), the
//! testbed of many fake clusters ([`testbed`]), and the one moto setup ([`moto`], [`world`]).

pub mod fake_patroni;
pub mod moto;
pub mod reports;
pub mod testbed;
pub mod world;

use crate::config::{ClusterConfig, Config};
use crate::domain::patroni::{
    ClusterView, Lag, Member, NodeObservation, PatroniIdentity, PatroniStatus, PollError,
    parse_cluster, parse_patroni,
};

pub const TG_ARN: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg/0123456789abcdef";

/// A cluster `pgha` of `n` nodes pg1..pgn at 10.0.1.(10+i), instance i-000..i-00n,
/// with a primary-only target group and a simple record.
pub fn cluster(n: usize) -> ClusterConfig {
    cluster_with(n, "")
}

pub const READ_TG_ARN: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg-ro/0123456789abcdef";

/// [`cluster`] with a read endpoint: a replicas target group and a `routing` record
/// `ro.example.internal.`, at most `max_lag` bytes behind, falling back to the primary or not.
pub fn cluster_with_replicas(
    n: usize,
    routing: &str,
    max_lag: u64,
    fallback: bool,
) -> ClusterConfig {
    cluster_with(
        n,
        &format!(
            r#", "replicas": {{"max_lag_bytes": {max_lag}, "fallback_to_primary": {fallback},
                "target_group": {{"arn": "{READ_TG_ARN}", "port": 5432}},
                "dns": {{"hosted_zone_id": "Z0123", "record_name": "ro.example.internal.", "ttl": 10, "routing": "{routing}"}}}}"#
        ),
    )
}

fn cluster_with(n: usize, extra: &str) -> ClusterConfig {
    let nodes: Vec<String> = (1..=n)
        .map(|i| {
            format!(
                r#"{{"name": "pg{i}", "api_url": "http://10.0.1.{}:8008", "address": "10.0.1.{}", "instance_id": "i-00{i}"}}"#,
                9 + i,
                9 + i
            )
        })
        .collect();
    let text = format!(
        r#"{{"clusters": [{{"scope": "pgha", "nodes": [{}],
            "target_group": {{"arn": "{TG_ARN}", "port": 5432}},
            "dns": {{"hosted_zone_id": "Z0123", "record_name": "db.example.internal.", "ttl": 10}}{extra}}}]}}"#,
        nodes.join(",")
    );
    let mut c: Config = Config::from_json(&text, "testkit").expect("testkit config is valid");
    c.clusters.remove(0)
}

pub fn status(name: &str, role: &str, state: &str, timeline: u64) -> PatroniStatus {
    PatroniStatus {
        state: state.into(),
        role: role.into(),
        timeline: Some(timeline),
        patroni: PatroniIdentity {
            version: Some("4.1.5".into()),
            scope: "pgha".into(),
            name: name.into(),
        },
        cluster_unlocked: false,
        failsafe_mode_is_active: false,
        replication: vec![],
        database_system_identifier: Some("7712154790783901088".into()),
    }
}

pub fn member(name: &str, role: &str, state: &str, lag: Option<Lag>) -> Member {
    Member {
        name: name.into(),
        role: role.into(),
        state: Some(state.into()),
        host: None,
        timeline: Some(1),
        lag,
        tags: Default::default(),
    }
}

/// A DCS view: `leader` as leader/running, every other name a streaming replica with lag 0.
pub fn view(leader: Option<&str>, others: &[&str]) -> ClusterView {
    let mut members = Vec::new();
    if let Some(l) = leader {
        members.push(member(l, "leader", "running", None));
    }
    for o in others {
        members.push(member(o, "replica", "streaming", Some(Lag::Bytes(0))));
    }
    ClusterView {
        scope: Some("pgha".into()),
        members,
    }
}

pub fn obs(
    name: &str,
    patroni: Result<PatroniStatus, PollError>,
    cluster: Result<ClusterView, PollError>,
) -> NodeObservation {
    NodeObservation {
        name: name.into(),
        patroni,
        cluster,
    }
}

pub fn down(name: &str) -> NodeObservation {
    let e = PollError::Connect("connection refused".into());
    obs(name, Err(e.clone()), Err(e))
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

pub fn fixture_patroni(name: &str, as_member: &str) -> PatroniStatus {
    let mut s = parse_patroni(&fixture(name)).expect("fixture parses");
    s.patroni.name = as_member.into();
    s
}

pub fn fixture_cluster(name: &str) -> ClusterView {
    parse_cluster(&fixture(name)).expect("fixture parses")
}
