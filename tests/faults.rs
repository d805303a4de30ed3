//! The fault matrix, on moto (through a fault-injecting proxy for the AWS faults) with FAKE
//! Patroni nodes for what real Patroni cannot produce on demand: the Patroni faults are a table
//! of named cases run by one loop, the AWS faults and TLS named tests. Every scenario checks
//! the invariants on what moto holds and on the report:
//!  1. a confirmed primary is routed to, and no other node;
//!  2. routing never moves or empties because Patroni is unreachable, slow or ambiguous;
//!  3. only configured nodes are routed to;
//!  4. after the fault clears one reconcile converges, and the next makes zero writes;
//!  6. no panic, no hang past the deadline, a clear message in the report.
//!
//! Invariant 5 (the webhook's 401s) is tested in tests/lambda_runtime.rs and src/webhook/tests.rs.

mod common;
// The AWS and TLS faults.
#[path = "faults/aws.rs"]
mod aws;
#[path = "faults/tls.rs"]
mod tls;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use common::fake_patroni::{FakeCluster, Reply, cluster_json, patroni_json};
use common::scenario::{Options, Scenario, writes};
use futures_util::{FutureExt, StreamExt};
use patroni_router::domain::report::Report;
use serde_json::{Value, json};

const NAMES: [&str; 3] = ["pg1", "pg2", "pg3"];

/// A world where pg1 leads and is routed.
async fn routed(opts: Options) -> Scenario {
    let s = Scenario::new(opts).await;
    s.fake.set_leader("pg1", 1);
    let r = s.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    s.assert_routed_to(0).await;
    s
}

/// Reconcile under a fault, bounded: the poll deadline (2 s) plus AWS time.
async fn reconcile_bounded(s: &Scenario) -> Report {
    tokio::time::timeout(Duration::from_secs(15), s.reconcile())
        .await
        .expect("invariant 6: the run finished within its deadline")
}

/// Invariant 2: nothing moved, nothing written, and the report says why.
async fn assert_fail_static(case: &str, s: &Scenario, r: &Report, kind: &str, why: &str) {
    let c = &r.clusters[0];
    assert_eq!(c.decision.kind(), kind, "{case}: {}", r.to_text());
    assert!(
        c.decision.reason.contains(why),
        "{case}: the reason should mention {why:?}: {}",
        c.decision.reason
    );
    assert!(
        c.changes.is_empty(),
        "{case}: no change without a confirmed primary: {}",
        r.to_text()
    );
    s.assert_routed_to(0).await;
}

/// Invariant 4: the fault cleared (pg2 now leads), one run converges, the next writes nothing.
async fn assert_converges(s: &Scenario) {
    s.fake.set_leader("pg2", 2);
    let r = s.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    s.assert_routed_to(1).await;
    assert_eq!(
        writes(&s.reconcile().await),
        0,
        "a second run after convergence writes nothing"
    );
}

fn patroni(name: &str, role: &str, state: &str, tl: u64) -> Reply {
    Reply::Json(200, patroni_json("pgha", name, role, state, tl))
}

/// The error the report shows for node `i`'s `/patroni`.
fn patroni_error(r: &Report, i: usize) -> String {
    r.clusters[0].nodes[i]
        .patroni_error
        .clone()
        .unwrap_or_default()
}

/// The cluster's errors, one per line.
fn errors(r: &Report) -> String {
    r.clusters[0]
        .errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- Patroni side: the fault table -------------------------------------------------------

/// What the run under a fault must do.
enum Expect {
    /// Fail-static (invariant 2): routing stays on pg1, with this decision kind and a reason
    /// mentioning this.
    FailStatic(&'static str, &'static str),
    /// A confirmed primary, node `i`, is routed to and no other node (invariant 1).
    Routed(usize),
}

/// One fault: pg1 leads and is routed; `fault` breaks the fake; one bounded run must meet
/// `expect` and `check`; then the fault clears and the next run converges (invariant 4).
struct Case {
    name: &'static str,
    fault: fn(&FakeCluster),
    expect: Expect,
    check: fn(&Report),
}

/// pg2 leads on timeline 2, and answers its own `/patroni` with `reply`.
fn pg2_leads_but_answers(f: &FakeCluster, reply: Reply) {
    f.set_leader("pg2", 2);
    f.node("pg2").set("/patroni", reply);
}

/// Every node's `/cluster` answers `view`.
fn every_view(f: &FakeCluster, view: &str) {
    for n in &f.nodes {
        n.set("/cluster", Reply::Json(200, view.to_string()));
    }
}

/// pg2's own `/patroni` as the primary on timeline 2.
fn pg2_own_json() -> String {
    patroni_json("pgha", "pg2", "primary", "running", 2)
}

fn truncated() -> Reply {
    let full = pg2_own_json();
    Reply::Raw(full.as_bytes()[..full.len() / 2].to_vec())
}

fn dcs_down(f: &FakeCluster) {
    // Real behaviour with etcd down: /cluster gets no HTTP answer; /patroni still answers.
    for n in &f.nodes {
        n.set("/cluster", Reply::Close);
    }
    let mut unlocked: Value =
        serde_json::from_str(&patroni_json("pgha", "pg1", "primary", "running", 1)).expect("json");
    unlocked["cluster_unlocked"] = json!(true);
    unlocked["failsafe_mode_is_active"] = json!(true);
    f.node("pg1")
        .set("/patroni", Reply::Json(200, unlocked.to_string()));
}

fn legacy_master(f: &FakeCluster) {
    let view = cluster_json("pgha", Some("pg2"), &NAMES, 3).replace("\"leader\"", "\"master\"");
    every_view(f, &view);
    f.node("pg1")
        .set("/patroni", patroni("pg1", "replica", "running", 3));
    f.node("pg2")
        .set("/patroni", patroni("pg2", "master", "running", 3));
}

fn case(name: &'static str, fault: fn(&FakeCluster), expect: Expect, check: fn(&Report)) -> Case {
    Case {
        name,
        fault,
        expect,
        check,
    }
}

fn stale_pg2(r: &Report) {
    let d = &r.clusters[0].decision;
    assert_eq!(d.stale_primaries, vec!["pg2".to_string()]);
    assert!(d.reason.contains("stale"), "{}", d.reason);
}

fn one_replica_down(r: &Report) {
    assert_eq!(writes(r), 0);
    let err = &r.clusters[0].nodes[2].patroni_error;
    assert!(err.is_some(), "the report shows pg3's error");
}

/// pg2's `/patroni` error mentions `why` (`what` names the case).
fn pg2_error_says(r: &Report, what: &str, why: &str) {
    let err = patroni_error(r, 1);
    assert!(err.contains(why), "{what}: {err}");
}

const NOT_PG2: Expect = Expect::FailStatic("no_primary", "pg2 does not answer");
const NOT_RUNNING: Expect = Expect::FailStatic("no_primary", "not a running primary");

/// No check beyond the expectation.
fn none(_: &Report) {}

/// The table: one row per fault (name; fault; expectation; extra checks on the report).
fn patroni_cases() -> Vec<Case> {
    let mut cases = answer_cases();
    cases.extend(leadership_cases());
    cases
}

/// The table's first half: nodes that do not answer, or answer what cannot be trusted.
#[rustfmt::skip]
fn answer_cases() -> Vec<Case> {
    use Expect::{FailStatic, Routed};
    vec![
        case("one replica down changes nothing",
             |f| f.node("pg3").fail(Reply::Close), Routed(0), one_replica_down),
        case("all nodes down",
             |f| f.nodes.iter().for_each(|n| n.fail(Reply::Close)),
             FailStatic("no_primary", "no node answered"), none),
        case("a node that accepts and never answers cannot hang the run",
             |f| f.node("pg1").fail(Reply::Hang), FailStatic("no_primary", "pg1 does not answer"),
             |r| assert!(patroni_error(r, 0).contains("timed out"))),
        case("a hanging replica cannot veto a confirmed primary",
             |f| { f.set_leader("pg2", 2); f.node("pg3").fail(Reply::Hang) }, Routed(1), none),
        case("a slow leader past the timeout is not confirmed",
             |f| pg2_leads_but_answers(f, Reply::Slow(Duration::from_secs(3), pg2_own_json())),
             NOT_PG2, none),
        case("garbage is not trusted",
             |f| pg2_leads_but_answers(f, Reply::Raw(b"<html>502 Bad Gateway</html>".to_vec())),
             NOT_PG2, |r| pg2_error_says(r, "garbage", "not a Patroni answer")),
        case("truncated JSON is not trusted",
             |f| pg2_leads_but_answers(f, truncated()),
             NOT_PG2, |r| pg2_error_says(r, "truncated", "not a Patroni answer")),
        case("a huge answer is not trusted",
             |f| pg2_leads_but_answers(f, Reply::Raw(vec![b' '; 1024 * 1024 + 10])),
             NOT_PG2, |r| pg2_error_says(r, "huge", "larger than")),
        case("wrong-type JSON is not trusted",
             |f| pg2_leads_but_answers(f, Reply::Json(200, pg2_own_json().replace("\"primary\"", "5"))),
             NOT_PG2, |r| pg2_error_says(r, "wrong type", "field `role`")),
    ]
}

/// The table's second half: who the DCS and the nodes say leads.
#[rustfmt::skip]
fn leadership_cases() -> Vec<Case> {
    use Expect::{FailStatic, Routed};
    vec![
        case("a node of another scope is misconfigured and never routed",
             |f| pg2_leads_but_answers(f, Reply::Json(200, patroni_json("other", "pg2", "primary", "running", 2))),
             FailStatic("no_primary", "misconfigured"),
             |r| assert!(r.clusters[0].decision.misconfigured.contains_key("pg2"))),
        case("a leader that is not configured is never routed",
             |f| every_view(f, &cluster_json("pgha", Some("pg9"), &["pg9", "pg1", "pg2", "pg3"], 2)),
             FailStatic("no_primary", "not a configured node"),
             |r| assert!(r.clusters[0].decision.warnings.iter().any(|w| w.contains("pg9")))),
        case("cluster views that disagree are ambiguous",
             |f| {
                 f.node("pg2").set("/cluster", Reply::Json(200, cluster_json("pgha", Some("pg2"), &NAMES, 2)));
                 f.node("pg2").set("/patroni", patroni("pg2", "primary", "running", 2));
             },
             FailStatic("ambiguous", "disagree"), none),
        // pg2 claims primary on the same timeline without the leader lock (a frozen old primary).
        case("a stale primary is reported and routes to the DCS leader only",
             |f| f.node("pg2").set("/patroni", patroni("pg2", "primary", "running", 1)),
             Routed(0), stale_pg2),
        // Claiming a newer timeline makes the DCS view suspect: nothing moves.
        case("a primary claiming a newer timeline is ambiguous",
             |f| f.node("pg2").set("/patroni", patroni("pg2", "primary", "running", 7)),
             FailStatic("ambiguous", "timeline 7"), none),
        case("the dead leader still listed by the DCS is fail-static",
             |f| f.node("pg1").fail(Reply::Close), FailStatic("no_primary", "pg1 does not answer"), none),
        case("DCS down: /cluster closes the connection and nothing moves",
             dcs_down, FailStatic("no_primary", "no node answered /cluster"), none),
        case("the legacy master role is routed", legacy_master, Routed(1), none),
        case("a standby_leader is not routed",
             |f| pg2_leads_but_answers(f, patroni("pg2", "standby_leader", "running", 2)), NOT_RUNNING, none),
        case("a demoted leader is not routed",
             |f| pg2_leads_but_answers(f, patroni("pg2", "demoted", "running", 2)), NOT_RUNNING, none),
        case("an uninitialized leader is not routed",
             |f| pg2_leads_but_answers(f, patroni("pg2", "uninitialized", "stopped", 2)), NOT_RUNNING, none),
        case("redirects are not followed",
             |f| pg2_leads_but_answers(f, Reply::Redirect(format!("{}/patroni", f.node("pg3").url))),
             FailStatic("no_primary", "unexpected HTTP status 302"), none),
    ]
}

async fn run_case(case: Case) {
    let s = routed(Options::default()).await;
    (case.fault)(&s.fake);
    let started = Instant::now();
    let r = reconcile_bounded(&s).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{}: bounded by the request timeout",
        case.name
    );
    match case.expect {
        Expect::FailStatic(kind, why) => assert_fail_static(case.name, &s, &r, kind, why).await,
        Expect::Routed(i) => {
            let primary = r.clusters[0].decision.primary();
            assert_eq!(primary, Some(NAMES[i]), "{}: {}", case.name, r.to_text());
            s.assert_routed_to(i).await;
        }
    }
    (case.check)(&r);
    assert_converges(&s).await;
}

/// Every Patroni fault of the table, four at a time, each in a world of its own; the names of
/// the failed cases at the end (their panics are printed as they happen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patroni_faults_are_fail_static_or_route_the_confirmed_primary_and_converge() {
    let runs = patroni_cases().into_iter().map(|case| async move {
        let name = case.name;
        (name, AssertUnwindSafe(run_case(case)).catch_unwind().await)
    });
    let failed: Vec<&str> = futures_util::stream::iter(runs)
        .buffer_unordered(4)
        .filter_map(|(name, r)| async move { r.is_err().then_some(name) })
        .collect()
        .await;
    assert!(failed.is_empty(), "fault cases failed: {failed:#?}");
}

#[tokio::test]
async fn unknown_lag_is_understood_and_only_known_lag_picks_the_standby() {
    let s = Scenario::new(Options {
        routing: "failover",
        ..Options::default()
    })
    .await;
    s.fake.set_leader("pg1", 1);
    let mut view: Value =
        serde_json::from_str(&cluster_json("pgha", Some("pg1"), &NAMES, 1)).expect("json");
    view["members"][1]["lag"] = json!("unknown");
    view["members"][2]["lag"] = json!(4096);
    every_view(&s.fake, &view.to_string());
    let r = reconcile_bounded(&s).await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(
        r.clusters[0].decision.standby.as_deref(),
        Some("pg3"),
        "known lag beats unknown"
    );
    let recs = common::records(&s.aws, &s.zone, &s.record).await;
    let secondary = recs
        .iter()
        .find(|r| r.2.as_deref() == Some("SECONDARY"))
        .expect("secondary");
    assert_eq!(secondary.3, vec![s.ip(2)]);
}
