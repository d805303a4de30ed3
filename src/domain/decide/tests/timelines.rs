//! decide: timelines only move forward; a config pointing elsewhere is an error, not a decision.

use super::*;

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
