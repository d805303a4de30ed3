//! decide's rules, each against real Patroni answers and their faults.

use super::*;
use crate::domain::patroni::PollError;
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

mod standby_and_replicas;
mod timelines;
