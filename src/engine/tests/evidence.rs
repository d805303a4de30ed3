//! Evidence that never waits for the slowest node: a hung node delays a confirmed decision by
//! the straggler grace only; the webhook path polls in one loop and an unknown node name does
//! not make it wait; the board keeps each node's latest answer.

use std::time::Instant;

use super::*;
use crate::engine::{Board, pollers};

fn slow_deadlines(c: &mut Value) {
    c["patroni"] =
        json!({"request_timeout": "3s", "poll_deadline": "5s", "straggler_grace": "100ms"});
}

#[tokio::test]
async fn a_hung_replica_delays_a_confirmed_decision_by_the_grace_only() {
    let w = World::new(&["a"], slow_deadlines);
    w.reconcile().await;
    w.fake(0).node("a-pg3").fail(Reply::Hang);
    w.fake(0).set_leader("a-pg2", 2);
    w.fake(0).node("a-pg3").fail(Reply::Hang);
    let started = Instant::now();
    let r = w.reconcile().await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(800), "{took:?}");
    assert_eq!(r.clusters[0].decision.primary(), Some("a-pg2"));
    assert_eq!(w.targets("a"), vec!["i-12:5432"]);
    let err = r.clusters[0].nodes[2]
        .patroni_error
        .clone()
        .unwrap_or_default();
    assert!(err.contains("straggler deadline"), "{err}");
}

#[tokio::test]
async fn a_hung_leader_is_waited_for_and_nothing_moves() {
    let w = World::new(&["a"], |c| {
        c["patroni"] = json!({"request_timeout": "400ms", "poll_deadline": "600ms", "straggler_grace": "100ms"});
    });
    w.reconcile().await;
    w.fake(0).node("a-pg1").fail(Reply::Hang);
    let started = Instant::now();
    let r = w.reconcile().await;
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "waited for the leader"
    );
    assert_eq!(r.clusters[0].decision.kind(), "no_primary");
    assert_eq!(w.targets("a"), vec!["i-11:5432"]);
}

#[tokio::test]
async fn a_callback_from_an_unknown_node_name_does_not_wait_for_it() {
    let w = World::new(&["a"], |c| c["webhook"] = json!({"confirm_timeout": "5s"}));
    w.reconcile().await;
    w.fake(0).set_leader("a-pg2", 2);
    let started = Instant::now();
    let r = w
        .router
        .run_after_callback("a", Some("db-host-7"))
        .await
        .expect("run");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.clusters[0].decision.primary(), Some("a-pg2"));
    assert_eq!(w.targets("a"), vec!["i-12:5432"]);
}

#[tokio::test]
async fn a_callback_reconciles_on_the_evidence_it_waited_for_one_poll_loop() {
    let w = World::new(&["a"], |_| {});
    w.reconcile().await;
    w.fake(0).set_leader("a-pg2", 2);
    let hits = |w: &World| w.fake(0).nodes.iter().map(|n| n.hits()).sum::<usize>();
    let before = hits(&w);
    let r = w
        .router
        .run_after_callback("a", Some("a-pg2"))
        .await
        .expect("run");
    assert_eq!(r.clusters[0].decision.primary(), Some("a-pg2"));
    assert_eq!(
        hits(&w) - before,
        7,
        "one poll of 3 nodes x 2 endpoints (not two polls), and the new primary's /history"
    );
}

#[tokio::test]
async fn pollers_keep_the_board_fresh_and_a_hung_node_blocks_only_itself() {
    let w = World::new(&["a"], |_| {});
    let config = w.router.config.clone();
    let board = Arc::new(Board::new(&config.clusters, Duration::from_secs(2)));
    let router = Arc::new(w.another_router().with_board(Arc::clone(&board)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks = pollers::spawn(&router, Duration::from_millis(50), &stopped);
    assert_eq!(tasks.len(), 3);
    w.fake(0).node("a-pg3").fail(Reply::Hang);
    tokio::time::sleep(Duration::from_millis(150)).await;
    w.fake(0).set_leader("a-pg2", 2);
    w.fake(0).node("a-pg3").fail(Reply::Hang);
    let started = Instant::now();
    loop {
        let d = crate::domain::decide::decide(
            &config.clusters[0],
            &board.snapshot(&config.clusters[0], Instant::now()),
        );
        if d.primary() == Some("a-pg2") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the board did not follow: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = router.run(Mode::Reconcile, None).await.expect("run");
    assert_eq!(
        r.clusters[0].decision.primary(),
        Some("a-pg2"),
        "a run reads the board"
    );
    let _ = stop.send(true);
    for t in tasks {
        t.abort();
    }
}

#[tokio::test]
async fn a_failover_reports_its_routing_lag_from_the_promotion_in_patroni_history() {
    let w = World::new(&["a"], |_| {});
    w.reconcile().await;
    w.fake(0).set_leader("a-pg2", 2);
    // Promoted 3 s before the router's clock says now.
    let promoted = "2026-11-18T11:06:37+00:00"; // Unix 1_795_000_000 - 3
    let history =
        format!(r#"[[1, 50331808, "no recovery target specified", "{promoted}", "a-pg2"]]"#);
    w.fake(0)
        .node("a-pg2")
        .set("/history", Reply::Json(200, history));
    let r = w.reconcile().await;
    let lag = r.clusters[0].routing_lag.expect("measured");
    assert_eq!(
        (lag.total_ms, lag.to_decision_ms, lag.to_applied_ms),
        (3000, 3000, 0)
    );
    // Steady state moves nothing: no lag to report.
    assert_eq!(w.reconcile().await.clusters[0].routing_lag, None);
}
