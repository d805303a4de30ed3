//! Properties over decide + plan: 10,000 random cluster views, reachability and routing.

use proptest::prelude::{
    Just, ProptestConfig, any, prop, prop_assert, prop_assert_eq, prop_oneof, proptest,
};
use proptest::strategy::Strategy as PropStrategy;
use proptest::test_runner::TestCaseError;

use super::*;
use crate::domain::patroni::{PgState, Role};

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

fn arb_poll_error() -> impl PropStrategy<Value = PollError> {
    prop_oneof![
        Just(PollError::Connect("refused".into())),
        Just(PollError::Timeout("2s".into())),
        Just(PollError::Parse("garbage".into())),
        Just(PollError::Status(500)),
    ]
}

fn arb_status(
    name: &'static str,
) -> impl PropStrategy<Value = crate::domain::patroni::PatroniStatus> {
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

fn arb_view() -> impl PropStrategy<Value = crate::domain::patroni::ClusterView> {
    prop::collection::vec(
        (
            prop::sample::select(NAMES),
            prop::sample::select(MEMBER_ROLES),
            prop::option::of(0u64..10_000),
            prop::bool::weighted(0.2),
        ),
        0..5,
    )
    .prop_map(|ms| crate::domain::patroni::ClusterView {
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

type Checked = Result<(), TestCaseError>;

fn read_endpoint_invariants(
    c: &ClusterConfig,
    o: &[NodeObservation],
    d: &Decision,
    max_lag: u64,
    fallback: bool,
) -> Checked {
    // The read endpoint: fail-static without a primary; otherwise only configured, trusted,
    // self-confirming replicas within the bound and not tagged noloadbalance (per the
    // leader's view), or the primary as the fallback.
    let rc = cluster_with_replicas(3, "multivalue", max_lag, fallback);
    let rd = decide(&rc, o);
    prop_assert_eq!(
        &rd,
        d,
        "the read endpoint's config does not change the decision"
    );
    let rcfg = rc.replicas.clone().expect("replicas");
    match (d.primary(), read_set(&rcfg, d)) {
        (None, set) => prop_assert!(set.is_none()),
        (Some(p), Some(set)) => {
            if set == vec![p] {
                prop_assert!(fallback);
            } else {
                let view = o
                    .iter()
                    .find(|x| x.name == p)
                    .and_then(|x| x.cluster.as_ref().ok())
                    .or_else(|| {
                        o.iter()
                            .filter(|x| {
                                c.node(&x.name).is_some() && !d.misconfigured.contains_key(&x.name)
                            })
                            .filter_map(|x| x.cluster.as_ref().ok())
                            .find(|v| v.members.iter().any(|m| m.name == p && m.is_leader()))
                    });
                for n in &set {
                    prop_assert!(c.node(n).is_some() && *n != p);
                    prop_assert!(
                        !d.misconfigured.contains_key(*n)
                            && !d.stale_primaries.iter().any(|s| s == n)
                    );
                    let own = o
                        .iter()
                        .find(|x| x.name == *n)
                        .and_then(|x| x.patroni.as_ref().ok());
                    prop_assert!(
                        own.is_some_and(|s| s.role == Role::Replica && s.state == PgState::Running)
                    );
                    let m = view.and_then(|v| v.members.iter().find(|m| m.name == *n));
                    let m = m.expect("a read-set node is in the leader's view");
                    prop_assert!(m.is_streaming_replica() && !m.tag_is_set("noloadbalance"));
                    prop_assert!(matches!(m.lag, Some(Lag::Bytes(b)) if b <= max_lag));
                }
            }
            let rtg = rc
                .target_groups
                .iter()
                .find(|t| t.strategy == TgStrategy::Replicas)
                .cloned()
                .expect("read tg");
            let empty = tg_state(TargetType::Instance, &[]);
            let rp = plan_target_group(&rc, &rtg, d, &empty);
            prop_assert_eq!(rp.register.len(), set.len());
        }
        (Some(_), None) => prop_assert!(false, "a confirmed primary always gives a read set"),
    }

    Ok(())
}

fn primary_invariants(c: &ClusterConfig, o: &[NodeObservation], d: &Decision) -> Checked {
    // A confirmed primary is configured, trusted, confirms itself, and no trusted view
    // names another leader.
    if let Some(p) = d.primary() {
        prop_assert!(c.node(p).is_some());
        prop_assert!(!d.misconfigured.contains_key(p));
        let own = o
            .iter()
            .find(|x| x.name == p)
            .and_then(|x| x.patroni.as_ref().ok());
        let own = own.expect("a confirmed primary answered /patroni");
        prop_assert!(
            own.role.is_primary() && own.state == PgState::Running && !own.cluster_unlocked
        );
        prop_assert_eq!(&own.patroni.name, p);
        for x in o
            .iter()
            .filter(|x| c.node(&x.name).is_some() && !d.misconfigured.contains_key(&x.name))
        {
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

    Ok(())
}

fn target_group_invariants(
    c: &ClusterConfig,
    d: &Decision,
    targets: &[(String, u16, String)],
    members: bool,
) -> Checked {
    let mut tg = c.target_groups[0].clone();
    if members {
        tg.strategy = TgStrategy::Members;
    }
    let refs: Vec<(&str, u16, &str)> = targets
        .iter()
        .map(|(i, p, s)| (i.as_str(), *p, s.as_str()))
        .collect();
    let state = tg_state(TargetType::Instance, &refs);
    let plan = plan_target_group(c, &tg, d, &state);

    // Only configured nodes are registered; only active targets are deregistered.
    let configured: Vec<String> = c
        .nodes
        .iter()
        .filter_map(|n| n.instance_id.clone())
        .collect();
    for r in &plan.register {
        prop_assert!(configured.contains(&r.id));
        prop_assert_eq!(r.port, 5432);
    }
    for r in &plan.deregister {
        prop_assert!(
            state
                .targets
                .iter()
                .any(|t| &t.target == r && t.is_active())
        );
    }
    // Fail-static: without a primary, primary-only changes nothing.
    if d.primary().is_none() && !members {
        prop_assert!(plan.is_noop());
    }
    // One apply converges; the next plan is a no-op.
    let after = apply(&state, &plan);
    prop_assert!(plan_target_group(c, &tg, d, &after).is_noop());
    if let (Some(p), false) = (d.primary(), members) {
        let active: Vec<&Target> = after
            .targets
            .iter()
            .filter(|t| t.is_active())
            .map(|t| &t.target)
            .collect();
        let want = Target {
            id: c
                .node(p)
                .and_then(|n| n.instance_id.clone())
                .unwrap_or_default(),
            port: 5432,
        };
        prop_assert_eq!(
            active,
            vec![&want],
            "routing points at the primary and nothing else"
        );
    }

    Ok(())
}

fn dns_invariants(
    mut c: ClusterConfig,
    d: &Decision,
    members: bool,
    record_value: &str,
) -> Checked {
    // DNS: same properties for the record.
    c.dns.as_mut().expect("dns").routing = if members {
        DnsRouting::Failover
    } else {
        DnsRouting::Simple
    };
    let dns = c.dns.clone().expect("dns");
    let mut current = record(NAME, "A", record_value, 10);
    if members {
        current.set_identifier = Some("primary".into());
        current.failover = Some("PRIMARY".into());
    }
    let dstate = dns_state(vec![current]);
    let dp = plan_dns(&c, &dns, d, &dstate);
    prop_assert!(dp.blocked.is_none());
    let addresses: Vec<String> = c.nodes.iter().map(|n| n.address.to_string()).collect();
    for u in &dp.upserts {
        for v in &u.values {
            prop_assert!(
                addresses.contains(v),
                "only configured addresses are written"
            );
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
            let main = applied
                .iter()
                .find(|r| r.failover != Some(FailoverRole::Secondary));
            prop_assert_eq!(main.map(|r| r.values.clone()), Some(vec![primary_addr]));
            prop_assert!(
                plan_dns(&c, &dns, d, &dns_state(applied))
                    .upserts
                    .is_empty()
            );
        }
    }
    Ok(())
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
        let c = cluster(3);
        let d = decide(&c, &o);
        read_endpoint_invariants(&c, &o, &d, max_lag, fallback)?;
        primary_invariants(&c, &o, &d)?;
        target_group_invariants(&c, &d, &targets, members)?;
        dns_invariants(c, &d, members, record_value)?;
    }
}
