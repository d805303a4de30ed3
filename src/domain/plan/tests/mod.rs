//! Unit tests of `plan`: target groups and the writer's records; the read endpoint and the
//! properties over decide + plan are in their own files.

mod props;
mod read;

use super::*;
use crate::config::{DnsRouting, Strategy as TgStrategy};
use crate::domain::aws::{DnsState, FailoverRole, RegisteredTarget};
use crate::domain::decide::{Verdict, decide};
use crate::domain::patroni::{Lag, NodeObservation, PollError};
use crate::testkit::*;

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn decision_for(primary: Option<&str>) -> Decision {
    Decision {
        verdict: match primary {
            Some(p) => Verdict::Confirmed {
                primary: p.into(),
                timeline: Some(1),
            },
            None => Verdict::NoPrimary,
        },
        reason: "test".into(),
        stale_primaries: vec![],
        misconfigured: Default::default(),
        standby: None,
        replicas: vec![],
        warnings: vec![],
        database: None,
        all_misconfigured: false,
    }
}

fn tg_state(kind: TargetType, targets: &[(&str, u16, &str)]) -> TargetGroupState {
    TargetGroupState {
        arn: TG_ARN.into(),
        target_type: kind,
        targets: targets
            .iter()
            .map(|(id, port, state)| RegisteredTarget {
                target: Target {
                    id: (*id).into(),
                    port: *port,
                },
                state: (*state).into(),
            })
            .collect(),
    }
}

fn t(id: &str) -> Target {
    Target {
        id: id.into(),
        port: 5432,
    }
}

fn tg_plan(primary: Option<&str>, state: &TargetGroupState) -> TargetGroupPlan {
    let c = cluster(3);
    let tg = c.target_groups[0].clone();
    plan_target_group(&c, &tg, &decision_for(primary), state)
}

#[test]
fn primary_only_moves_the_registration() {
    let p = tg_plan(
        Some("pg2"),
        &tg_state(TargetType::Instance, &[("i-001", 5432, "healthy")]),
    );
    assert_eq!(p.register, vec![t("i-002")]);
    assert_eq!(p.deregister, vec![t("i-001")]);
    assert_eq!(p.blocked, None);
}

#[test]
fn steady_state_is_a_noop() {
    let p = tg_plan(
        Some("pg2"),
        &tg_state(TargetType::Instance, &[("i-002", 5432, "healthy")]),
    );
    assert!(p.is_noop(), "{p:?}");
}

#[test]
fn without_a_primary_nothing_moves() {
    let state = tg_state(
        TargetType::Instance,
        &[("i-001", 5432, "healthy"), ("i-003", 5432, "unhealthy")],
    );
    let p = tg_plan(None, &state);
    assert!(p.is_noop() && p.blocked.is_none(), "{p:?}");
}

#[test]
fn draining_targets_count_as_unregistered() {
    let state = tg_state(
        TargetType::Instance,
        &[("i-002", 5432, "draining"), ("i-001", 5432, "draining")],
    );
    let p = tg_plan(Some("pg2"), &state);
    assert_eq!(
        p.register,
        vec![t("i-002")],
        "re-register a primary that was draining"
    );
    assert!(
        p.deregister.is_empty(),
        "never deregister what is already draining"
    );
}

#[test]
fn unknown_targets_are_removed_in_primary_only() {
    let state = tg_state(
        TargetType::Instance,
        &[("i-002", 5432, "healthy"), ("i-999", 5432, "healthy")],
    );
    let p = tg_plan(Some("pg2"), &state);
    assert_eq!(p.deregister, vec![t("i-999")]);
    assert!(p.register.is_empty());
}

#[test]
fn ip_groups_register_the_address() {
    let p = tg_plan(
        Some("pg3"),
        &tg_state(TargetType::Ip, &[("10.0.1.10", 5432, "healthy")]),
    );
    assert_eq!(p.register, vec![t("10.0.1.12")]);
    assert_eq!(p.deregister, vec![t("10.0.1.10")]);
}

#[test]
fn a_port_change_re_registers() {
    let p = tg_plan(
        Some("pg2"),
        &tg_state(TargetType::Instance, &[("i-002", 6432, "healthy")]),
    );
    assert_eq!(p.register, vec![t("i-002")]);
    assert_eq!(
        p.deregister,
        vec![Target {
            id: "i-002".into(),
            port: 6432
        }]
    );
}

#[test]
fn a_node_without_instance_id_blocks_the_group_and_touches_nothing() {
    let mut c = cluster(3);
    c.nodes[1].instance_id = None;
    let tg = c.target_groups[0].clone();
    let state = tg_state(TargetType::Instance, &[("i-001", 5432, "healthy")]);
    let p = plan_target_group(&c, &tg, &decision_for(Some("pg2")), &state);
    assert!(p.is_noop());
    assert!(
        p.blocked
            .as_deref()
            .is_some_and(|b| b.contains("instance_id")),
        "{p:?}"
    );
}

#[test]
fn unsupported_target_types_are_blocked() {
    let p = tg_plan(Some("pg2"), &tg_state(TargetType::Lambda, &[]));
    assert!(p.is_noop());
    assert!(
        p.blocked.as_deref().is_some_and(|b| b.contains("lambda")),
        "{p:?}"
    );
}

#[test]
fn members_strategy_keeps_every_configured_node_whatever_the_decision() {
    let c = cluster(3);
    let mut tg = c.target_groups[0].clone();
    tg.strategy = TgStrategy::Members;
    let state = tg_state(
        TargetType::Instance,
        &[("i-001", 5432, "healthy"), ("i-999", 5432, "unhealthy")],
    );
    let p = plan_target_group(&c, &tg, &decision_for(None), &state);
    assert_eq!(p.register, vec![t("i-002"), t("i-003")]);
    assert_eq!(p.deregister, vec![t("i-999")]);
    let mut d = decision_for(Some("pg1"));
    d.misconfigured
        .insert("pg3".into(), "answers as another scope".into());
    let p = plan_target_group(&c, &tg, &d, &state);
    assert_eq!(
        p.register,
        vec![t("i-002")],
        "a misconfigured node is never registered"
    );
}

fn record(name: &str, rtype: &str, value: &str, ttl: i64) -> RecordSet {
    RecordSet {
        name: name.into(),
        rtype: rtype.into(),
        set_identifier: None,
        failover: None,
        ttl: Some(ttl),
        values: vec![value.into()],
        health_check_id: None,
        multivalue: false,
        alias: false,
    }
}

fn dns_state(records: Vec<RecordSet>) -> DnsState {
    DnsState {
        zone_id: "Z0123".into(),
        records,
    }
}

const NAME: &str = "db.example.internal.";

fn dns_plan_for(c: &ClusterConfig, d: &Decision, current: Vec<RecordSet>) -> DnsPlan {
    plan_dns(c, c.dns.as_ref().expect("dns"), d, &dns_state(current))
}

#[test]
fn simple_record_is_created_then_left_alone() {
    let c = cluster(3);
    let p = dns_plan_for(&c, &decision_for(Some("pg2")), vec![]);
    assert_eq!(p.upserts, vec![record(NAME, "A", "10.0.1.11", 10)]);
    let p = dns_plan_for(
        &c,
        &decision_for(Some("pg2")),
        vec![record(NAME, "A", "10.0.1.11", 10)],
    );
    assert!(p.upserts.is_empty() && p.blocked.is_none(), "{p:?}");
}

#[test]
fn simple_record_follows_the_primary_and_the_ttl() {
    let c = cluster(3);
    let p = dns_plan_for(
        &c,
        &decision_for(Some("pg2")),
        vec![record(NAME, "A", "10.0.1.10", 10)],
    );
    assert_eq!(p.upserts, vec![record(NAME, "A", "10.0.1.11", 10)]);
    let p = dns_plan_for(
        &c,
        &decision_for(Some("pg2")),
        vec![record(NAME, "A", "10.0.1.11", 300)],
    );
    assert_eq!(p.upserts.len(), 1);
}

#[test]
fn without_a_primary_the_record_stays() {
    let c = cluster(3);
    let p = dns_plan_for(
        &c,
        &decision_for(None),
        vec![record(NAME, "A", "10.0.1.10", 10)],
    );
    assert!(p.upserts.is_empty() && p.blocked.is_none());
}

#[test]
fn conflicting_records_block_instead_of_failing_midway() {
    let c = cluster(3);
    let d = decision_for(Some("pg1"));
    let p = dns_plan_for(
        &c,
        &d,
        vec![record(NAME, "CNAME", "elsewhere.example.", 10)],
    );
    assert!(p.upserts.is_empty() && p.blocked.as_deref().is_some_and(|b| b.contains("CNAME")));
    let mut weighted = record(NAME, "A", "10.0.1.10", 10);
    weighted.set_identifier = Some("w1".into());
    let p = dns_plan_for(&c, &d, vec![weighted]);
    assert!(p.upserts.is_empty() && p.blocked.is_some());
    let mut alias = record(NAME, "A", "", 10);
    alias.values.clear();
    alias.alias = true;
    alias.ttl = None;
    let p = dns_plan_for(&c, &d, vec![alias]);
    assert!(p.upserts.is_empty() && p.blocked.as_deref().is_some_and(|b| b.contains("alias")));
    // Records of other types at the name (TXT, ...) do not matter.
    let p = dns_plan_for(&c, &d, vec![record(NAME, "TXT", "\"owner\"", 10)]);
    assert_eq!(p.upserts.len(), 1);
}

fn failover_cluster() -> ClusterConfig {
    let mut c = cluster(3);
    if let Some(d) = c.dns.as_mut() {
        d.routing = DnsRouting::Failover;
        d.health_check_ids.primary = Some("hc-1".into());
    }
    c
}

#[test]
fn failover_records_point_primary_and_standby() {
    let c = failover_cluster();
    let mut d = decision_for(Some("pg2"));
    d.standby = Some("pg3".into());
    let p = dns_plan_for(&c, &d, vec![]);
    assert_eq!(p.upserts.len(), 2);
    assert_eq!(p.upserts[0].failover, Some(FailoverRole::Primary));
    assert_eq!(p.upserts[0].values, vec!["10.0.1.11".to_string()]);
    assert_eq!(p.upserts[0].health_check_id.as_deref(), Some("hc-1"));
    assert_eq!(p.upserts[1].failover, Some(FailoverRole::Secondary));
    assert_eq!(p.upserts[1].values, vec!["10.0.1.12".to_string()]);
    // Applied: nothing more to do.
    let p2 = dns_plan_for(&c, &d, p.upserts.clone());
    assert!(p2.upserts.is_empty(), "{p2:?}");
    // No standby: the secondary points at the primary, never at a stale node.
    d.standby = None;
    let p3 = dns_plan_for(&c, &d, p.upserts);
    assert_eq!(p3.upserts.len(), 1);
    assert_eq!(p3.upserts[0].values, vec!["10.0.1.11".to_string()]);
}

#[test]
fn failover_routing_refuses_a_simple_record_in_place() {
    let c = failover_cluster();
    let p = dns_plan_for(
        &c,
        &decision_for(Some("pg1")),
        vec![record(NAME, "A", "10.0.1.10", 10)],
    );
    assert!(p.upserts.is_empty() && p.blocked.is_some(), "{p:?}");
}
