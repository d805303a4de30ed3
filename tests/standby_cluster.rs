//! A Patroni standby cluster (the DR region) on moto with fake Patroni nodes: the DR endpoint
//! follows the `standby_leader`, and the promotion runbook (docs/dr-runbook.md) step by step:
//! during promotion routing stays put (fail-static), after the config flip it is the primary.

mod common;

use common::fake_patroni::{Reply, patroni_json};
use common::scenario::{Options, Scenario, writes};
use patroni_router::domain::report::{Mode, Report};
use patroni_router::engine::Router;
use serde_json::{Value, json};

/// `leader` leads the cluster: as `standby_leader` of a standby cluster, or, once promoted,
/// as a normal `leader`/`primary`. The others replicate from it.
/// `leader` leads (promoted: as a primary) on timeline 1.
fn set_leader(s: &Scenario, leader: &str, promoted: bool) {
    set_leader_on(s, leader, promoted, 1);
}

fn set_leader_on(s: &Scenario, leader: &str, promoted: bool, timeline: u64) {
    let (dcs_role, own_role) = if promoted {
        ("leader", "primary")
    } else {
        ("standby_leader", "standby_leader")
    };
    let members: Vec<Value> = s
        .fake
        .nodes
        .iter()
        .map(|n| {
            if n.name == leader {
                json!({"name": n.name, "role": dcs_role, "state": "running", "timeline": timeline})
            } else {
                json!({"name": n.name, "role": "replica", "state": "streaming", "timeline": timeline, "lag": 0})
            }
        })
        .collect();
    let view = json!({"scope": "pgha", "members": members}).to_string();
    for n in &s.fake.nodes {
        let role = if n.name == leader {
            own_role
        } else {
            "replica"
        };
        n.set(
            "/patroni",
            Reply::Json(
                200,
                patroni_json("pgha", &n.name, role, "running", timeline),
            ),
        );
        n.set("/cluster", Reply::Json(200, view.clone()));
    }
}

async fn router(s: &Scenario, standby_cluster: bool) -> Router {
    s.router_with(|c: &mut Value| c["clusters"][0]["standby_cluster"] = json!(standby_cluster))
        .await
}

async fn run(r: &Router) -> Report {
    r.run(Mode::Reconcile, None).await.expect("run")
}

#[tokio::test]
async fn dr_endpoint_follows_the_standby_leader_through_promotion() {
    let s = Scenario::new(Options::default()).await;
    let dr = router(&s, true).await;

    // Before: the DR endpoint points at the standby leader.
    set_leader(&s, "pg1", false);
    let r = run(&dr).await;
    assert_eq!(
        r.clusters[0].decision.primary(),
        Some("pg1"),
        "{}",
        r.to_text()
    );
    s.assert_routed_to(0).await;
    assert_eq!(writes(&run(&dr).await), 0, "steady state writes nothing");

    // A router configured for a normal cluster refuses a standby leader: it is read-only.
    let wrong = router(&s, false).await;
    let r = run(&wrong).await;
    assert_eq!(
        r.clusters[0].decision.kind(),
        "no_primary",
        "{}",
        r.to_text()
    );
    assert!(
        r.clusters[0].decision.reason.contains("standby_cluster"),
        "{}",
        r.to_text()
    );
    assert_eq!(writes(&r), 0);

    // The standby leader fails over inside the DR cluster: the DR endpoint follows.
    set_leader(&s, "pg2", false);
    run(&dr).await;
    s.assert_routed_to(1).await;

    // During promotion (standby_cluster removed from Patroni's config): pg2 becomes primary
    // while the router still says standby_cluster: fail-static, the endpoint stays on pg2 -
    // which is the new primary - and the reason tells the operator to flip the config.
    set_leader(&s, "pg2", true);
    let r = run(&dr).await;
    assert_eq!(
        r.clusters[0].decision.kind(),
        "no_primary",
        "{}",
        r.to_text()
    );
    assert!(
        r.clusters[0]
            .decision
            .reason
            .contains("fix `standby_cluster`"),
        "{}",
        r.to_text()
    );
    assert_eq!(writes(&r), 0);
    s.assert_routed_to(1).await;

    // After: the config says standby_cluster: false; pg2 is confirmed, nothing to move.
    let promoted = router(&s, false).await;
    let r = run(&promoted).await;
    assert_eq!(
        r.clusters[0].decision.primary(),
        Some("pg2"),
        "{}",
        r.to_text()
    );
    assert_eq!(writes(&r), 0, "{}", r.to_text());
    s.assert_routed_to(1).await;

    // And from then on it is a normal cluster: a failover (a new timeline, as a real one
    // makes; the fence refuses a second leader on one timeline) moves routing.
    set_leader_on(&s, "pg3", true, 2);
    run(&promoted).await;
    s.assert_routed_to(2).await;
}
