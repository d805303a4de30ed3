//! The read endpoint's plans: lag bound, noloadbalance, fallback, simple and multivalue.

use super::*;

fn replica(name: &str, lag: Option<u64>) -> crate::domain::decide::Replica {
    crate::domain::decide::Replica {
        name: name.into(),
        lag,
        sync: false,
        noloadbalance: false,
    }
}

fn read_decision(primary: Option<&str>, replicas: Vec<crate::domain::decide::Replica>) -> Decision {
    let mut d = decision_for(primary);
    d.replicas = replicas;
    d
}

fn read_tg(c: &ClusterConfig) -> TargetGroupConfig {
    c.target_groups
        .iter()
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
