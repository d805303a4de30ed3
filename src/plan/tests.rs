use proptest::prelude::{
    Just, ProptestConfig, any, prop, prop_assert, prop_assert_eq, prop_oneof, proptest,
};
use proptest::strategy::Strategy as PropStrategy;

use super::*;
use crate::config::{DnsRouting, Strategy as TgStrategy};
use crate::decide::{Verdict, decide};
use crate::patroni::{Lag, NodeObservation, PollError};
use crate::testkit::*;

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
    let tg = c.target_group.clone().expect("testkit has a target group");
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
    let tg = c.target_group.clone().expect("tg");
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
    let p = tg_plan(
        Some("pg2"),
        &tg_state(TargetType::Unsupported("lambda".into()), &[]),
    );
    assert!(p.is_noop());
    assert!(
        p.blocked.as_deref().is_some_and(|b| b.contains("lambda")),
        "{p:?}"
    );
}

#[test]
fn members_strategy_keeps_every_configured_node_whatever_the_decision() {
    let c = cluster(3);
    let mut tg = c.target_group.clone().expect("tg");
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
    assert_eq!(p.upserts[0].failover.as_deref(), Some("PRIMARY"));
    assert_eq!(p.upserts[0].values, vec!["10.0.1.11".to_string()]);
    assert_eq!(p.upserts[0].health_check_id.as_deref(), Some("hc-1"));
    assert_eq!(p.upserts[1].failover.as_deref(), Some("SECONDARY"));
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

// ---- properties over decide + plan -------------------------------------------------------

const ROLES: &[&str] = &[
    "primary",
    "master",
    "replica",
    "standby_leader",
    "demoted",
    "uninitialized",
];
const MEMBER_ROLES: &[&str] = &[
    "leader",
    "replica",
    "sync_standby",
    "standby_leader",
    "master",
];
const NAMES: &[&str] = &["pg1", "pg2", "pg3", "pg4", "ghost"];

// ---- the read endpoint ----

fn replica(name: &str, lag: Option<u64>) -> crate::decide::Replica {
    crate::decide::Replica {
        name: name.into(),
        lag,
        sync: false,
        noloadbalance: false,
    }
}

fn read_decision(primary: Option<&str>, replicas: Vec<crate::decide::Replica>) -> Decision {
    let mut d = decision_for(primary);
    d.replicas = replicas;
    d
}

fn read_tg(c: &ClusterConfig) -> TargetGroupConfig {
    c.all_target_groups()
        .find(|t| t.strategy == TgStrategy::Replicas)
        .cloned()
        .expect("a replicas target group")
}

fn read_dns_plan(c: &ClusterConfig, d: &Decision, current: Vec<RecordSet>) -> DnsPlan {
    let r = c.replicas.clone().expect("replicas");
    let dns = r.dns.clone().expect("replicas.dns");
    plan_read_dns(c, &r, &dns, d, &dns_state(current))
}

const RO: &str = "ro.example.internal.";

#[test]
fn read_set_keeps_replicas_within_the_lag_bound_and_without_noloadbalance() {
    let c = cluster_with_replicas(4, "simple", 1000, true);
    let r = c.replicas.clone().expect("replicas");
    let mut tagged = replica("pg4", Some(0));
    tagged.noloadbalance = true;
    let d = read_decision(
        Some("pg1"),
        vec![
            replica("pg2", Some(1000)),
            replica("pg3", Some(1001)),
            tagged,
        ],
    );
    assert_eq!(
        read_set(&r, &d),
        Some(vec!["pg2"]),
        "lag 1000 is within 1000; 1001 is not"
    );
    let unknown = read_decision(Some("pg1"), vec![replica("pg2", None)]);
    assert_eq!(
        read_set(&r, &unknown),
        Some(vec!["pg1"]),
        "unknown lag counts as too far; nobody fit: the primary serves reads"
    );
    assert_eq!(
        read_set(&r, &read_decision(None, vec![replica("pg2", Some(0))])),
        None
    );

    let no_fallback = cluster_with_replicas(3, "simple", 1000, false);
    let r = no_fallback.replicas.clone().expect("replicas");
    assert_eq!(read_set(&r, &unknown), Some(vec![]), "no fallback: nobody");
}

#[test]
fn replicas_target_group_follows_the_read_set() {
    let c = cluster_with_replicas(3, "simple", 1000, true);
    let tg = read_tg(&c);
    let state = tg_state(
        TargetType::Instance,
        &[("i-001", 5432, "healthy"), ("i-003", 5432, "healthy")],
    );
    let d = read_decision(
        Some("pg1"),
        vec![replica("pg2", Some(10)), replica("pg3", Some(5000))],
    );
    let p = plan_target_group(&c, &tg, &d, &state);
    assert_eq!(p.register, vec![t("i-002")]);
    assert_eq!(
        p.deregister,
        vec![t("i-001"), t("i-003")],
        "the primary leaves once a replica can serve; the lagging pg3 leaves"
    );
    let none = plan_target_group(&c, &tg, &read_decision(None, vec![]), &state);
    assert!(none.is_noop(), "fail-static without a confirmed primary");
    let fallback = plan_target_group(&c, &tg, &read_decision(Some("pg1"), vec![]), &state);
    assert_eq!(fallback.register, Vec::<Target>::new());
    assert_eq!(
        fallback.deregister,
        vec![t("i-003")],
        "only the primary serves reads"
    );
}

#[test]
fn simple_read_record_holds_every_fit_replica() {
    let c = cluster_with_replicas(3, "simple", 1000, true);
    let d = read_decision(
        Some("pg1"),
        vec![replica("pg2", Some(0)), replica("pg3", Some(7))],
    );
    let p = read_dns_plan(&c, &d, vec![record(RO, "A", "10.0.1.10", 10)]);
    assert_eq!(p.upserts.len(), 1);
    assert_eq!(sorted(&p.upserts[0].values), vec!["10.0.1.11", "10.0.1.12"]);
    assert!(p.deletes.is_empty());
    let mut have = record(RO, "A", "10.0.1.12", 10);
    have.values.insert(0, "10.0.1.11".into());
    assert!(
        read_dns_plan(&c, &d, vec![have]).upserts.is_empty(),
        "same values in another order: no change"
    );
    let no_fallback = cluster_with_replicas(3, "simple", 1000, false);
    let p = read_dns_plan(&no_fallback, &read_decision(Some("pg1"), vec![]), vec![]);
    assert!(p.upserts.is_empty() && p.blocked.is_some(), "{p:?}");
}

#[test]
fn multivalue_read_records_are_added_and_removed_per_replica() {
    let c = cluster_with_replicas(3, "multivalue", 1000, false);
    let mv = |node: &str, addr: &str| {
        let mut r = record(RO, "A", addr, 10);
        r.set_identifier = Some(node.into());
        r.multivalue = true;
        r
    };
    let d = read_decision(
        Some("pg1"),
        vec![replica("pg2", Some(0)), replica("pg3", Some(9999))],
    );
    let p = read_dns_plan(&c, &d, vec![mv("pg3", "10.0.1.12")]);
    assert_eq!(p.upserts, vec![mv("pg2", "10.0.1.11")]);
    assert_eq!(
        p.deletes,
        vec![mv("pg3", "10.0.1.12")],
        "deleted exactly as held"
    );
    assert!(
        read_dns_plan(&c, &d, vec![mv("pg2", "10.0.1.11")])
            .upserts
            .is_empty()
    );
    let nobody = read_dns_plan(
        &c,
        &read_decision(Some("pg1"), vec![]),
        vec![mv("pg2", "10.0.1.11")],
    );
    assert_eq!(
        nobody.deletes.len(),
        1,
        "no fallback: the last replica record goes"
    );
    let simple_in_place = read_dns_plan(&c, &d, vec![record(RO, "A", "10.0.1.11", 10)]);
    assert!(
        simple_in_place.blocked.is_some() && simple_in_place.deletes.is_empty(),
        "a simple record at the name is not ours to delete"
    );
    let static_ = read_dns_plan(
        &c,
        &read_decision(None, vec![]),
        vec![mv("pg2", "10.0.1.11")],
    );
    assert!(
        static_.deletes.is_empty() && static_.upserts.is_empty(),
        "fail-static"
    );
}

fn arb_poll_error() -> impl PropStrategy<Value = PollError> {
    prop_oneof![
        Just(PollError::Connect("refused".into())),
        Just(PollError::Timeout("2s".into())),
        Just(PollError::Parse("garbage".into())),
        Just(PollError::Status(500)),
    ]
}

fn arb_status(name: &'static str) -> impl PropStrategy<Value = crate::patroni::PatroniStatus> {
    (
        prop::sample::select(ROLES),
        prop::sample::select(&["running", "starting", "stopped"][..]),
        1u64..4,
        prop::sample::select(&["pgha", "pgha", "pgha", "other"][..]),
        prop::sample::select(NAMES),
        any::<bool>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(move |(role, state, tl, scope, claimed, honest, unlocked)| {
            let mut s = status(if honest { name } else { claimed }, role, state, tl);
            s.patroni.scope = scope.into();
            s.cluster_unlocked = unlocked;
            s
        })
}

fn arb_view() -> impl PropStrategy<Value = crate::patroni::ClusterView> {
    prop::collection::vec(
        (
            prop::sample::select(NAMES),
            prop::sample::select(MEMBER_ROLES),
            prop::option::of(0u64..10_000),
            prop::bool::weighted(0.2),
        ),
        0..5,
    )
    .prop_map(|ms| crate::patroni::ClusterView {
        scope: Some("pgha".into()),
        members: ms
            .into_iter()
            .map(|(n, r, lag, noloadbalance)| {
                let mut m = member(
                    n,
                    r,
                    "streaming",
                    Some(lag.map_or(Lag::Unknown, Lag::Bytes)),
                );
                if noloadbalance {
                    m.tags
                        .insert("noloadbalance".into(), serde_json::Value::Bool(true));
                }
                m
            })
            .collect(),
    })
}

fn arb_observations() -> impl PropStrategy<Value = Vec<NodeObservation>> {
    let node = |name: &'static str| {
        (
            prop::result::maybe_ok(arb_status(name), arb_poll_error()),
            prop::result::maybe_ok(arb_view(), arb_poll_error()),
        )
            .prop_map(move |(p, c)| obs(name, p, c))
    };
    (node("pg1"), node("pg2"), node("pg3"), node("ghost")).prop_map(|(a, b, c, d)| vec![a, b, c, d])
}

fn arb_targets() -> impl PropStrategy<Value = Vec<(String, u16, String)>> {
    prop::collection::vec(
        (
            prop::sample::select(&["i-001", "i-002", "i-003", "i-999"][..]),
            prop::sample::select(&[5432u16, 6432][..]),
            prop::sample::select(&["healthy", "unhealthy", "draining", "initial"][..]),
        )
            .prop_map(|(i, p, s)| (i.to_string(), p, s.to_string())),
        0..5,
    )
    // AWS lists a target (id, port) once.
    .prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|(i, p, _)| seen.insert((i.clone(), *p)));
        v
    })
}

/// What AWS holds after a plan is applied (register, then deregister).
fn apply(state: &TargetGroupState, plan: &TargetGroupPlan) -> TargetGroupState {
    let mut next = state.clone();
    next.targets
        .retain(|t| !(t.is_active() && plan.deregister.contains(&t.target)));
    for r in &plan.register {
        next.targets.retain(|t| &t.target != r);
        next.targets.push(RegisteredTarget {
            target: r.clone(),
            state: "initial".into(),
        });
    }
    next
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn decide_and_plan_keep_the_invariants(
        o in arb_observations(),
        targets in arb_targets(),
        members in any::<bool>(),
        record_value in prop::sample::select(&["10.0.1.10", "10.0.1.11", "10.9.9.9"][..]),
        max_lag in prop::sample::select(&[0u64, 500, 5_000, u64::MAX][..]),
        fallback in any::<bool>(),
    ) {
        let mut c = cluster(3);
        let d = decide(&c, &o);

        // The read endpoint: fail-static without a primary; otherwise only configured, trusted,
        // self-confirming replicas within the bound and not tagged noloadbalance (per the
        // leader's view), or the primary as the fallback.
        let rc = cluster_with_replicas(3, "multivalue", max_lag, fallback);
        let rd = decide(&rc, &o);
        prop_assert_eq!(&rd, &d, "the read endpoint's config does not change the decision");
        let rcfg = rc.replicas.clone().expect("replicas");
        match (d.primary(), read_set(&rcfg, &d)) {
            (None, set) => prop_assert!(set.is_none()),
            (Some(p), Some(set)) => {
                if set == vec![p] {
                    prop_assert!(fallback);
                } else {
                    let view = o.iter().find(|x| x.name == p).and_then(|x| x.cluster.as_ref().ok())
                        .or_else(|| o.iter().filter(|x| c.node(&x.name).is_some() && !d.misconfigured.contains_key(&x.name))
                            .filter_map(|x| x.cluster.as_ref().ok())
                            .find(|v| v.members.iter().any(|m| m.name == p && m.is_leader())));
                    for n in &set {
                        prop_assert!(c.node(n).is_some() && *n != p);
                        prop_assert!(!d.misconfigured.contains_key(*n) && !d.stale_primaries.iter().any(|s| s == n));
                        let own = o.iter().find(|x| x.name == *n).and_then(|x| x.patroni.as_ref().ok());
                        prop_assert!(own.is_some_and(|s| s.role == "replica" && s.state == "running"));
                        let m = view.and_then(|v| v.members.iter().find(|m| m.name == *n));
                        let m = m.expect("a read-set node is in the leader's view");
                        prop_assert!(m.is_streaming_replica() && !m.tag_is_set("noloadbalance"));
                        prop_assert!(matches!(m.lag, Some(Lag::Bytes(b)) if b <= max_lag));
                    }
                }
                let rtg = rc.all_target_groups().find(|t| t.strategy == TgStrategy::Replicas).cloned().expect("read tg");
                let empty = tg_state(TargetType::Instance, &[]);
                let rp = plan_target_group(&rc, &rtg, &d, &empty);
                prop_assert_eq!(rp.register.len(), set.len());
            }
            (Some(_), None) => prop_assert!(false, "a confirmed primary always gives a read set"),
        }

        // A confirmed primary is configured, trusted, confirms itself, and no trusted view
        // names another leader.
        if let Some(p) = d.primary() {
            prop_assert!(c.node(p).is_some());
            prop_assert!(!d.misconfigured.contains_key(p));
            let own = o.iter().find(|x| x.name == p).and_then(|x| x.patroni.as_ref().ok());
            let own = own.expect("a confirmed primary answered /patroni");
            prop_assert!(own.is_primary_role() && own.state == "running" && !own.cluster_unlocked);
            prop_assert_eq!(&own.patroni.name, p);
            for x in o.iter().filter(|x| c.node(&x.name).is_some() && !d.misconfigured.contains_key(&x.name)) {
                if let Ok(v) = &x.cluster {
                    for m in v.members.iter().filter(|m| m.is_leader()) {
                        prop_assert_eq!(&m.name, p);
                    }
                }
            }
            prop_assert!(!d.stale_primaries.iter().any(|s| s == p));
            prop_assert!(d.standby.as_deref() != Some(p));
        }
        if let Some(s) = &d.standby {
            prop_assert!(c.node(s).is_some());
        }

        let mut tg = c.target_group.clone().expect("tg");
        if members { tg.strategy = TgStrategy::Members; }
        let refs: Vec<(&str, u16, &str)> = targets.iter().map(|(i, p, s)| (i.as_str(), *p, s.as_str())).collect();
        let state = tg_state(TargetType::Instance, &refs);
        let plan = plan_target_group(&c, &tg, &d, &state);

        // Only configured nodes are registered; only active targets are deregistered.
        let configured: Vec<String> = c.nodes.iter().filter_map(|n| n.instance_id.clone()).collect();
        for r in &plan.register {
            prop_assert!(configured.contains(&r.id));
            prop_assert_eq!(r.port, 5432);
        }
        for r in &plan.deregister {
            prop_assert!(state.targets.iter().any(|t| &t.target == r && t.is_active()));
        }
        // Fail-static: without a primary, primary-only changes nothing.
        if d.primary().is_none() && !members {
            prop_assert!(plan.is_noop());
        }
        // One apply converges; the next plan is a no-op.
        let after = apply(&state, &plan);
        prop_assert!(plan_target_group(&c, &tg, &d, &after).is_noop());
        if let (Some(p), false) = (d.primary(), members) {
            let active: Vec<&Target> = after.targets.iter().filter(|t| t.is_active()).map(|t| &t.target).collect();
            let want = Target { id: c.node(p).and_then(|n| n.instance_id.clone()).unwrap_or_default(), port: 5432 };
            prop_assert_eq!(active, vec![&want], "routing points at the primary and nothing else");
        }

        // DNS: same properties for the record.
        c.dns.as_mut().expect("dns").routing = if members { DnsRouting::Failover } else { DnsRouting::Simple };
        let dns = c.dns.clone().expect("dns");
        let mut current = record(NAME, "A", record_value, 10);
        if members {
            current.set_identifier = Some("primary".into());
            current.failover = Some("PRIMARY".into());
        }
        let dstate = dns_state(vec![current]);
        let dp = plan_dns(&c, &dns, &d, &dstate);
        prop_assert!(dp.blocked.is_none());
        let addresses: Vec<String> = c.nodes.iter().map(|n| n.address.to_string()).collect();
        for u in &dp.upserts {
            for v in &u.values {
                prop_assert!(addresses.contains(v), "only configured addresses are written");
            }
        }
        match d.primary() {
            None => prop_assert!(dp.upserts.is_empty()),
            Some(p) => {
                let mut applied = dstate.records.clone();
                for u in &dp.upserts {
                    applied.retain(|r| r.set_identifier != u.set_identifier);
                    applied.push(u.clone());
                }
                let primary_addr = c.node(p).map(|n| n.address.to_string()).unwrap_or_default();
                let main = applied.iter().find(|r| r.failover.as_deref() != Some("SECONDARY"));
                prop_assert_eq!(main.map(|r| r.values.clone()), Some(vec![primary_addr]));
                prop_assert!(plan_dns(&c, &dns, &d, &dns_state(applied)).upserts.is_empty());
            }
        }
    }
}
