use super::*;
use crate::domain::patroni::{Lag, PatroniStatus, PollError};
use crate::testkit::*;

fn healthy() -> Vec<NodeObservation> {
    let c = fixture_cluster("cluster.json");
    vec![
        obs(
            "pg1",
            Ok(fixture_patroni("patroni-leader.json", "pg1")),
            Ok(c.clone()),
        ),
        obs(
            "pg2",
            Ok(fixture_patroni("patroni-replica.json", "pg2")),
            Ok(c.clone()),
        ),
        obs(
            "pg3",
            Ok(fixture_patroni("patroni-replica.json", "pg3")),
            Ok(c),
        ),
    ]
}

fn confirmed(d: &Decision) -> &str {
    d.primary()
        .unwrap_or_else(|| panic!("expected a confirmed primary, got {d:?}"))
}

#[test]
fn healthy_real_cluster_confirms_the_leader() {
    let d = decide(&cluster(3), &healthy());
    assert_eq!(confirmed(&d), "pg1");
    assert_eq!(
        d.verdict,
        Verdict::Confirmed {
            primary: "pg1".into(),
            timeline: Some(1)
        }
    );
    assert!(d.stale_primaries.is_empty());
    assert_eq!(d.standby.as_deref(), Some("pg2"), "equal lag: config order");
    assert!(d.reason.contains("pg1"), "{}", d.reason);
}

#[test]
fn dead_leader_still_listed_by_the_dcs_is_not_routed_to() {
    // Real capture: the leader's host died, its lock has not expired yet.
    let c = fixture_cluster("cluster-during-failover-leader-dead.json");
    let o = vec![
        down("pg1"),
        obs(
            "pg2",
            Ok(fixture_patroni(
                "patroni-replica-during-failover.json",
                "pg2",
            )),
            Ok(c.clone()),
        ),
        obs(
            "pg3",
            Ok(fixture_patroni(
                "patroni-replica-during-failover.json",
                "pg3",
            )),
            Ok(c),
        ),
    ];
    let d = decide(&cluster(3), &o);
    assert_eq!(d.verdict, Verdict::NoPrimary);
    assert!(
        d.reason.contains("pg1") && d.reason.contains("does not answer"),
        "{}",
        d.reason
    );
}

#[test]
fn after_failover_the_new_leader_is_confirmed() {
    let c = fixture_cluster("cluster-after-failover-one-down.json");
    let mut leader = fixture_patroni("patroni-leader.json", "pg3");
    leader.timeline = Some(2);
    let o = vec![
        down("pg1"),
        obs(
            "pg2",
            Ok(fixture_patroni("patroni-replica.json", "pg2")),
            Ok(c.clone()),
        ),
        obs("pg3", Ok(leader), Ok(c)),
    ];
    let d = decide(&cluster(3), &o);
    assert_eq!(confirmed(&d), "pg3");
    assert_eq!(d.standby.as_deref(), Some("pg2"));
}

#[test]
fn everything_unreachable_is_no_primary() {
    let d = decide(&cluster(3), &[down("pg1"), down("pg2"), down("pg3")]);
    assert_eq!(d.verdict, Verdict::NoPrimary);
    assert!(
        d.reason.contains("no node answered /cluster"),
        "{}",
        d.reason
    );
}

#[test]
fn dcs_down_with_failsafe_is_no_primary() {
    // Real behaviour: /cluster gives no answer while etcd is down; /patroni still answers.
    let dcs_down = || {
        Err(PollError::Other(
            "connection closed before message completed".into(),
        ))
    };
    let o = vec![
        obs(
            "pg1",
            Ok(fixture_patroni(
                "patroni-replica-failsafe-dcs-down.json",
                "pg1",
            )),
            dcs_down(),
        ),
        obs(
            "pg2",
            Ok(fixture_patroni(
                "patroni-replica-failsafe-dcs-down.json",
                "pg2",
            )),
            dcs_down(),
        ),
        obs(
            "pg3",
            Ok(fixture_patroni(
                "patroni-leader-failsafe-dcs-down.json",
                "pg3",
            )),
            dcs_down(),
        ),
    ];
    assert_eq!(decide(&cluster(3), &o).verdict, Verdict::NoPrimary);
}

#[test]
fn unlocked_primary_is_not_confirmed_even_with_a_cached_view() {
    let mut o = healthy();
    o[0].patroni = Ok(fixture_patroni(
        "patroni-leader-failsafe-dcs-down.json",
        "pg1",
    ));
    let d = decide(&cluster(3), &o);
    assert_eq!(d.verdict, Verdict::NoPrimary);
    assert!(d.reason.contains("unlocked"), "{}", d.reason);
}

#[test]
fn views_that_disagree_are_ambiguous() {
    let o = vec![
        obs(
            "pg1",
            Ok(status("pg1", "primary", "running", 1)),
            Ok(view(Some("pg1"), &["pg2", "pg3"])),
        ),
        obs(
            "pg2",
            Ok(status("pg2", "primary", "running", 1)),
            Ok(view(Some("pg2"), &["pg1", "pg3"])),
        ),
        obs(
            "pg3",
            Ok(status("pg3", "replica", "running", 1)),
            Ok(view(Some("pg1"), &["pg2", "pg3"])),
        ),
    ];
    let d = decide(&cluster(3), &o);
    assert_eq!(d.verdict, Verdict::Ambiguous);
    assert!(d.reason.contains("disagree"), "{}", d.reason);
}

#[test]
fn one_view_with_two_leaders_is_ambiguous() {
    let mut v = view(Some("pg1"), &["pg3"]);
    v.members.push(member("pg2", "leader", "running", None));
    let o = vec![obs(
        "pg1",
        Ok(status("pg1", "primary", "running", 1)),
        Ok(v),
    )];
    assert_eq!(decide(&cluster(3), &o).verdict, Verdict::Ambiguous);
}

#[test]
fn a_view_without_leader_does_not_veto_the_others() {
    let o = vec![
        obs(
            "pg1",
            Ok(status("pg1", "primary", "running", 2)),
            Ok(view(Some("pg1"), &["pg2"])),
        ),
        obs(
            "pg2",
            Ok(status("pg2", "replica", "running", 2)),
            Ok(view(None, &["pg1", "pg2"])),
        ),
    ];
    assert_eq!(confirmed(&decide(&cluster(2), &o)), "pg1");
}

#[test]
fn no_leader_in_any_view_is_no_primary() {
    let o = vec![
        obs(
            "pg1",
            Ok(status("pg1", "replica", "running", 1)),
            Ok(view(None, &["pg1", "pg2"])),
        ),
        obs(
            "pg2",
            Ok(status("pg2", "replica", "running", 1)),
            Ok(view(None, &["pg1", "pg2"])),
        ),
    ];
    let d = decide(&cluster(2), &o);
    assert_eq!(d.verdict, Verdict::NoPrimary);
    assert!(d.reason.contains("name no leader"), "{}", d.reason);
}

#[test]
fn frozen_old_primary_is_stale_and_the_dcs_leader_wins() {
    // SIGSTOP'd Patroni: the old primary still claims primary on the old timeline.
    let o = vec![
        obs(
            "pg1",
            Ok(status("pg1", "primary", "running", 1)),
            Ok(view(Some("pg1"), &["pg2", "pg3"])),
        ),
        obs(
            "pg2",
            Ok(status("pg2", "primary", "running", 2)),
            Ok(view(Some("pg2"), &["pg3"])),
        ),
        obs(
            "pg3",
            Ok(status("pg3", "replica", "running", 2)),
            Ok(view(Some("pg2"), &["pg3"])),
        ),
    ];
    // pg1's own view is stale too, so the views disagree: ambiguous, nothing moves.
    assert_eq!(decide(&cluster(3), &o).verdict, Verdict::Ambiguous);
    // When the frozen node's REST API does not answer /cluster (typical: Patroni is frozen,
    // or its view is unreachable), the DCS leader is confirmed and pg1 reported as stale.
    let mut o2 = o.clone();
    o2[0].cluster = Err(PollError::Timeout("no answer within 2s".into()));
    let d = decide(&cluster(3), &o2);
    assert_eq!(confirmed(&d), "pg2");
    assert_eq!(d.stale_primaries, vec!["pg1".to_string()]);
    assert!(d.reason.contains("stale"), "{}", d.reason);
    assert_eq!(
        d.standby.as_deref(),
        Some("pg3"),
        "a stale primary is never the standby"
    );
}

#[test]
fn a_self_declared_primary_on_a_newer_timeline_makes_it_ambiguous() {
    let o = vec![
        obs(
            "pg1",
            Ok(status("pg1", "primary", "running", 1)),
            Ok(view(Some("pg1"), &["pg2"])),
        ),
        obs(
            "pg2",
            Ok(status("pg2", "primary", "running", 3)),
            Err(PollError::Status(503)),
        ),
    ];
    let d = decide(&cluster(2), &o);
    assert_eq!(d.verdict, Verdict::Ambiguous);
    assert!(d.reason.contains("timeline 3"), "{}", d.reason);
}

#[test]
fn an_unconfigured_leader_is_never_routed_to() {
    let v = view(Some("intruder"), &["pg1", "pg2"]);
    let o = vec![
        obs(
            "pg1",
            Ok(status("pg1", "replica", "running", 1)),
            Ok(v.clone()),
        ),
        obs("pg2", Ok(status("pg2", "replica", "running", 1)), Ok(v)),
        // An observation for a node that is not configured is ignored outright.
        obs(
            "intruder",
            Ok(status("intruder", "primary", "running", 1)),
            Ok(view(Some("intruder"), &[])),
        ),
    ];
    let d = decide(&cluster(2), &o);
    assert_eq!(d.verdict, Verdict::NoPrimary);
    assert!(d.reason.contains("not a configured node"), "{}", d.reason);
    assert!(
        d.warnings.iter().any(|w| w.contains("intruder")),
        "{:?}",
        d.warnings
    );
}

#[test]
fn a_node_of_another_scope_is_misconfigured_and_ignored() {
    let mut foreign = status("pg1", "primary", "running", 1);
    foreign.patroni.scope = "other".into();
    let o = vec![
        obs("pg1", Ok(foreign), Ok(view(Some("pg1"), &["pg2"]))),
        obs(
            "pg2",
            Ok(status("pg2", "replica", "running", 1)),
            Ok(view(Some("pg1"), &["pg2"])),
        ),
    ];
    let d = decide(&cluster(2), &o);
    assert_eq!(d.verdict, Verdict::NoPrimary);
    assert!(d.misconfigured.contains_key("pg1"));
    assert!(d.reason.contains("misconfigured"), "{}", d.reason);
}

#[test]
fn a_node_answering_with_another_name_is_misconfigured() {
    // pg2's URL actually reaches pg3: its answers must not count as pg2's.
    let o = vec![
        obs(
            "pg1",
            Ok(status("pg1", "primary", "running", 1)),
            Ok(view(Some("pg1"), &["pg2"])),
        ),
        obs(
            "pg2",
            Ok(status("pg3", "replica", "running", 1)),
            Ok(view(Some("pg2"), &["pg1"])),
        ),
    ];
    let d = decide(&cluster(2), &o);
    assert_eq!(
        confirmed(&d),
        "pg1",
        "the misconfigured node's view is not a vote"
    );
    assert!(d.misconfigured.contains_key("pg2"));
    assert_eq!(d.standby, None, "a misconfigured node is never the standby");
}

#[test]
fn a_view_of_another_scope_is_ignored() {
    let mut v = view(Some("pg2"), &["pg1"]);
    v.scope = Some("other".into());
    let o = vec![
        obs(
            "pg1",
            Ok(status("pg1", "primary", "running", 1)),
            Ok(view(Some("pg1"), &["pg2"])),
        ),
        obs("pg2", Err(PollError::Status(404)), Ok(v)),
    ];
    let d = decide(&cluster(2), &o);
    assert_eq!(confirmed(&d), "pg1");
    assert!(d.misconfigured.contains_key("pg2"));
}

#[test]
fn leader_roles_that_are_not_a_running_primary_are_not_confirmed() {
    for (role, state) in [
        ("replica", "running"),
        ("demoted", "running"),
        ("uninitialized", "stopped"),
        ("primary", "starting"),
        ("primary", "stopped"),
        ("standby_leader", "running"),
    ] {
        let o = vec![obs(
            "pg1",
            Ok(status("pg1", role, state, 1)),
            Ok(view(Some("pg1"), &["pg2"])),
        )];
        let d = decide(&cluster(2), &o);
        assert_eq!(
            d.verdict,
            Verdict::NoPrimary,
            "{role}/{state}: {}",
            d.reason
        );
    }
}

#[test]
fn legacy_master_role_is_a_primary() {
    let mut v = view(None, &["pg2"]);
    v.members.push(member("pg1", "master", "running", None));
    let o = vec![obs("pg1", Ok(status("pg1", "master", "running", 4)), Ok(v))];
    assert_eq!(confirmed(&decide(&cluster(2), &o)), "pg1");
}

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

// ---- timelines only move forward; a config pointing elsewhere is an error ----------------

fn healthy_on(tl: u64) -> Vec<NodeObservation> {
    ["pg1", "pg2", "pg3"]
        .iter()
        .map(|n| {
            let role = if *n == "pg1" { "primary" } else { "replica" };
            obs(
                n,
                Ok(status(n, role, "running", tl)),
                Ok(view(Some("pg1"), &["pg2", "pg3"])),
            )
        })
        .collect()
}

#[test]
fn a_replica_on_a_newer_timeline_than_the_leader_makes_the_view_suspect() {
    let mut o = healthy_on(2);
    assert_eq!(confirmed(&decide(&cluster(3), &o)), "pg1");
    o[2].patroni = Ok(status("pg3", "replica", "running", 3));
    let d = decide(&cluster(3), &o);
    assert_eq!(d.verdict, Verdict::Ambiguous);
    assert!(
        d.reason.contains("pg3 (replica) reports timeline 3") && d.reason.contains("timeline 2"),
        "{}",
        d.reason
    );
    assert!(
        d.stale_primaries.is_empty(),
        "a replica is not a stale primary"
    );
}

#[test]
fn a_leader_without_a_timeline_cannot_outrank_another_claimant() {
    let mut o = healthy_on(2);
    let mut leader = status("pg1", "primary", "running", 2);
    leader.timeline = None;
    o[0].patroni = Ok(leader);
    let d = decide(&cluster(3), &o);
    assert_eq!(
        d.verdict,
        Verdict::Confirmed {
            primary: "pg1".into(),
            timeline: None
        },
        "alone, a leader without a timeline is still the leader"
    );
    o[1].patroni = Ok(status("pg2", "primary", "running", 1));
    let d = decide(&cluster(3), &o);
    assert_eq!(d.verdict, Verdict::Ambiguous);
    assert!(
        d.reason.contains("reports no timeline") && d.reason.contains("pg2"),
        "{}",
        d.reason
    );
}

#[test]
fn every_answer_from_another_scope_is_an_error_not_a_decision() {
    let mut o = healthy_on(1);
    for x in &mut o {
        if let Ok(s) = &mut x.patroni {
            s.patroni.scope = "other".into();
        }
    }
    o[2] = down("pg3");
    let d = decide(&cluster(3), &o);
    assert_eq!(d.verdict, Verdict::NoPrimary);
    assert!(d.all_misconfigured);
    assert!(
        d.reason
            .contains("every node that answered is misconfigured")
            && d.reason.contains("scope"),
        "{}",
        d.reason
    );
    // One misconfigured node among healthy ones is not the cluster's config being wrong.
    let mut o = healthy_on(1);
    if let Ok(s) = &mut o[2].patroni {
        s.patroni.scope = "other".into();
    }
    let d = decide(&cluster(3), &o);
    assert!(!d.all_misconfigured);
    assert_eq!(confirmed(&d), "pg1");
    // Nobody answering at all is fail-static, not a config error.
    let d = decide(&cluster(3), &[down("pg1"), down("pg2"), down("pg3")]);
    assert!(!d.all_misconfigured);
}

#[test]
fn the_decision_carries_the_database_identity() {
    let d = decide(&cluster(3), &healthy_on(1));
    assert_eq!(d.database.as_deref(), Some("7712154790783901088"));
}

#[test]
fn the_database_is_known_without_a_confirmed_primary_when_the_nodes_agree() {
    let o = vec![down("pg1"), down("pg2")];
    assert_eq!(decide(&cluster(3), &o).database, None, "nobody answered");
    let mut o = healthy_on(1);
    o[0] = down("pg1");
    let d = decide(&cluster(3), &o);
    assert_eq!(d.verdict, Verdict::NoPrimary);
    assert_eq!(d.database.as_deref(), Some("7712154790783901088"));
    if let Ok(s) = &mut o[1].patroni {
        s.database_system_identifier = Some("1".into());
    }
    assert_eq!(
        decide(&cluster(3), &o).database,
        None,
        "nodes that disagree say nothing"
    );
}
