//! decide: standby clusters, the read endpoint's replicas and the failover record's standby.

use super::*;
use crate::domain::patroni::{Lag, PatroniStatus, PollError};
#[test]
fn standby_clusters_route_to_the_standby_leader_only_when_configured() {
    let mut v = view(None, &["pg2"]);
    v.members
        .push(member("pg1", "standby_leader", "streaming", None));
    let o = vec![obs(
        "pg1",
        Ok(status("pg1", "standby_leader", "running", 1)),
        Ok(v),
    )];
    let d = decide(&cluster(2), &o);
    assert_eq!(
        d.verdict,
        Verdict::NoPrimary,
        "not a standby cluster by config"
    );
    assert!(d.reason.contains("standby_cluster"), "{}", d.reason);
    let mut standby = cluster(2);
    standby.standby_cluster = true;
    assert_eq!(confirmed(&decide(&standby, &o)), "pg1");
    // ...and a plain leader in a cluster configured as standby is not routed to.
    let o = vec![obs(
        "pg1",
        Ok(status("pg1", "primary", "running", 1)),
        Ok(view(Some("pg1"), &["pg2"])),
    )];
    assert_eq!(decide(&standby, &o).verdict, Verdict::NoPrimary);
}

#[test]
fn best_standby_prefers_sync_then_least_lag_then_known_lag() {
    let mut v = view(Some("pg1"), &[]);
    v.members
        .push(member("pg2", "replica", "streaming", Some(Lag::Bytes(500))));
    v.members
        .push(member("pg3", "replica", "streaming", Some(Lag::Unknown)));
    v.members
        .push(member("pg4", "replica", "streaming", Some(Lag::Bytes(10))));
    v.members.push(member(
        "pg5",
        "sync_standby",
        "streaming",
        Some(Lag::Bytes(9000)),
    ));
    let mut o = vec![obs(
        "pg1",
        Ok(status("pg1", "primary", "running", 1)),
        Ok(v),
    )];
    for n in ["pg2", "pg3", "pg4", "pg5"] {
        o.push(obs(
            n,
            Ok(status(n, "replica", "running", 1)),
            Err(PollError::Status(503)),
        ));
    }
    assert_eq!(decide(&cluster(5), &o).standby.as_deref(), Some("pg5"));
    o[4] = down("pg5"); // an unreachable standby is not a candidate
    assert_eq!(decide(&cluster(5), &o).standby.as_deref(), Some("pg4"));
    o[3] = down("pg4");
    assert_eq!(decide(&cluster(5), &o).standby.as_deref(), Some("pg2"));
    o[1] = down("pg2");
    assert_eq!(
        decide(&cluster(5), &o).standby.as_deref(),
        Some("pg3"),
        "unknown lag, last resort"
    );
}

#[test]
fn replicas_follow_the_leaders_view_with_lag_and_noloadbalance() {
    let mut view = fixture_cluster("cluster.json");
    for m in &mut view.members {
        if m.name == "pg3" {
            m.lag = Some(Lag::Bytes(70_000));
            m.tags
                .insert("noloadbalance".into(), serde_json::Value::Bool(true));
        }
    }
    let o: Vec<NodeObservation> = ["pg1", "pg2", "pg3"]
        .iter()
        .map(|n| {
            let file = if *n == "pg1" {
                "patroni-leader.json"
            } else {
                "patroni-replica.json"
            };
            obs(n, Ok(fixture_patroni(file, n)), Ok(view.clone()))
        })
        .collect();
    let d = decide(&cluster(3), &o);
    assert_eq!(confirmed(&d), "pg1");
    let got: Vec<(&str, Option<u64>, bool)> = d
        .replicas
        .iter()
        .map(|r| (r.name.as_str(), r.lag, r.noloadbalance))
        .collect();
    assert_eq!(
        got,
        vec![("pg2", Some(0), false), ("pg3", Some(70_000), true)]
    );

    // A replica that does not confirm itself (its own /patroni says stopped) is not listed.
    let mut o2 = o.clone();
    if let Ok(s) = &mut o2[1].patroni {
        s.state = "stopped".into();
    }
    let d = decide(&cluster(3), &o2);
    let names: Vec<&str> = d.replicas.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["pg3"]);

    // Without a confirmed primary there are no replicas to route reads to.
    let d = decide(&cluster(3), &[down("pg1"), o[1].clone(), o[2].clone()]);
    assert!(d.primary().is_none() && d.replicas.is_empty(), "{d:?}");
}

/// The DR cluster of the real-Patroni e2e test (scope pgdr: dr1, dr2), from its real answers.
fn dr_cluster(standby: bool) -> crate::config::ClusterConfig {
    let text = format!(
        r#"{{"clusters": [{{"scope": "pgdr", "standby_cluster": {standby}, "nodes": [
            {{"name": "dr1", "api_url": "http://10.1.0.10:8008", "address": "10.1.0.10"}},
            {{"name": "dr2", "api_url": "http://10.1.0.11:8008", "address": "10.1.0.11"}}],
            "dns": {{"hosted_zone_id": "Z0123", "record_name": "dr.example.internal."}}}}]}}"#
    );
    let mut c = crate::config::Config::from_json(&text, "test").expect("valid");
    c.clusters.remove(0)
}

fn dr_observations(view: &str, leader_patroni: PatroniStatus) -> Vec<NodeObservation> {
    let v = fixture_cluster(view);
    let mut replica = fixture_patroni("patroni-replica.json", "dr1");
    replica.patroni.scope = "pgdr".into();
    vec![
        obs("dr1", Ok(replica), Ok(v.clone())),
        obs("dr2", Ok(leader_patroni), Ok(v)),
    ]
}

#[test]
fn real_standby_cluster_routes_its_standby_leader_and_refuses_it_as_a_primary() {
    let o = dr_observations(
        "cluster-standby-cluster.json",
        fixture_patroni("patroni-standby-leader.json", "dr2"),
    );
    let d = decide(&dr_cluster(true), &o);
    assert_eq!(confirmed(&d), "dr2");
    let names: Vec<&str> = d.replicas.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["dr1"], "dr1 streams from the standby leader");

    let d = decide(&dr_cluster(false), &o);
    assert_eq!(d.verdict, Verdict::NoPrimary);
    assert!(d.reason.contains("standby_leader"), "{}", d.reason);
}

#[test]
fn real_promoted_standby_cluster_is_fail_static_until_the_config_flips() {
    let mut promoted = fixture_patroni("patroni-standby-leader.json", "dr2");
    promoted.role = "primary".into();
    promoted.timeline = Some(2);
    let o = dr_observations("cluster-standby-promoted.json", promoted);
    let d = decide(&dr_cluster(true), &o);
    assert_eq!(d.verdict, Verdict::NoPrimary);
    assert!(d.reason.contains("fix `standby_cluster`"), "{}", d.reason);
    assert_eq!(confirmed(&decide(&dr_cluster(false), &o)), "dr2");
}
