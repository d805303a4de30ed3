//! The fault matrix: each scenario a named test, on moto (through a fault-injecting proxy for
//! the AWS faults) with FAKE Patroni nodes for what real Patroni cannot produce on demand.
//! Every scenario checks the invariants on what moto holds and on the report:
//!  1. a confirmed primary is routed to, and no other node;
//!  2. routing never moves or empties because Patroni is unreachable, slow or ambiguous;
//!  3. only configured nodes are routed to;
//!  4. after the fault clears one reconcile converges, and the next makes zero writes;
//!  6. no panic, no hang past the deadline, a clear message in the report.
//!
//! Invariant 5 (the webhook's 401s) is tested in tests/lambda_runtime.rs and src/webhook/tests.rs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::aws_proxy::Fault;
use common::fake_patroni::{Reply, cluster_json, patroni_json};
use common::scenario::{Options, Scenario, writes};
use patroni_router::domain::report::{ChangeStatus, Report};
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
async fn assert_fail_static(s: &Scenario, r: &Report, kind: &str, why: &str) {
    let c = &r.clusters[0];
    assert_eq!(c.decision.kind(), kind, "{}", r.to_text());
    assert!(
        c.decision.reason.contains(why),
        "the reason should mention {why:?}: {}",
        c.decision.reason
    );
    assert!(
        c.changes.is_empty(),
        "no change without a confirmed primary: {}",
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

// ---- Patroni side ------------------------------------------------------------------------

#[tokio::test]
async fn one_replica_down_changes_nothing() {
    let s = routed(Options::default()).await;
    s.fake.node("pg3").fail(Reply::Close);
    let r = reconcile_bounded(&s).await;
    assert_eq!(r.clusters[0].decision.primary(), Some("pg1"));
    assert_eq!(writes(&r), 0);
    s.assert_routed_to(0).await;
    assert!(
        r.clusters[0].nodes[2].patroni_error.is_some(),
        "the report shows pg3's error"
    );
    assert_converges(&s).await;
}

#[tokio::test]
async fn all_nodes_down_is_fail_static() {
    let s = routed(Options::default()).await;
    for n in &s.fake.nodes {
        n.fail(Reply::Close);
    }
    let r = reconcile_bounded(&s).await;
    assert_fail_static(&s, &r, "no_primary", "no node answered").await;
    assert_converges(&s).await;
}

#[tokio::test]
async fn a_node_that_accepts_and_never_answers_cannot_hang_the_run() {
    let s = routed(Options::default()).await;
    s.fake.node("pg1").fail(Reply::Hang);
    let started = std::time::Instant::now();
    let r = reconcile_bounded(&s).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the request timeout"
    );
    assert_fail_static(&s, &r, "no_primary", "pg1 does not answer").await;
    assert!(
        r.clusters[0].nodes[0]
            .patroni_error
            .as_deref()
            .unwrap_or("")
            .contains("timed out")
    );
    assert_converges(&s).await;
}

#[tokio::test]
async fn a_hanging_replica_cannot_veto_a_confirmed_primary() {
    let s = routed(Options::default()).await;
    s.fake.set_leader("pg2", 2);
    s.fake.node("pg3").fail(Reply::Hang);
    let r = reconcile_bounded(&s).await;
    assert_eq!(
        r.clusters[0].decision.primary(),
        Some("pg2"),
        "{}",
        r.to_text()
    );
    s.assert_routed_to(1).await;
}

#[tokio::test]
async fn a_slow_leader_past_the_timeout_is_not_confirmed() {
    let s = routed(Options::default()).await;
    s.fake.set_leader("pg2", 2);
    let body = patroni_json("pgha", "pg2", "primary", "running", 2);
    s.fake
        .node("pg2")
        .set("/patroni", Reply::Slow(Duration::from_secs(3), body));
    let r = reconcile_bounded(&s).await;
    assert_fail_static(&s, &r, "no_primary", "pg2 does not answer").await;
}

#[tokio::test]
async fn garbage_truncated_huge_and_wrong_type_json_are_not_trusted() {
    let s = routed(Options::default()).await;
    s.fake.set_leader("pg2", 2);
    let full = patroni_json("pgha", "pg2", "primary", "running", 2);
    let cases: Vec<(&str, Reply, &str)> = vec![
        (
            "garbage",
            Reply::Raw(b"<html>502 Bad Gateway</html>".to_vec()),
            "not a Patroni answer",
        ),
        (
            "truncated",
            Reply::Raw(full.as_bytes()[..full.len() / 2].to_vec()),
            "not a Patroni answer",
        ),
        (
            "huge",
            Reply::Raw(vec![b' '; 1024 * 1024 + 10]),
            "larger than",
        ),
        (
            "wrong type",
            Reply::Json(200, full.replace("\"primary\"", "5")),
            "field `role`",
        ),
    ];
    for (name, reply, why) in cases {
        s.fake.node("pg2").set("/patroni", reply);
        let r = reconcile_bounded(&s).await;
        assert_fail_static(&s, &r, "no_primary", "pg2 does not answer").await;
        let err = r.clusters[0].nodes[1]
            .patroni_error
            .clone()
            .unwrap_or_default();
        assert!(err.contains(why), "{name}: {err}");
    }
    assert_converges(&s).await;
}

#[tokio::test]
async fn a_node_of_another_scope_is_misconfigured_and_never_routed() {
    let s = routed(Options::default()).await;
    s.fake.set_leader("pg2", 2);
    s.fake.node("pg2").set(
        "/patroni",
        Reply::Json(200, patroni_json("other", "pg2", "primary", "running", 2)),
    );
    let r = reconcile_bounded(&s).await;
    assert_fail_static(&s, &r, "no_primary", "misconfigured").await;
    assert!(r.clusters[0].decision.misconfigured.contains_key("pg2"));
    assert_converges(&s).await;
}

#[tokio::test]
async fn a_leader_that_is_not_configured_is_never_routed() {
    let s = routed(Options::default()).await;
    let view = cluster_json("pgha", Some("pg9"), &["pg9", "pg1", "pg2", "pg3"], 2);
    for n in &s.fake.nodes {
        n.set("/cluster", Reply::Json(200, view.clone()));
    }
    let r = reconcile_bounded(&s).await;
    assert_fail_static(&s, &r, "no_primary", "not a configured node").await;
    assert!(
        r.clusters[0]
            .decision
            .warnings
            .iter()
            .any(|w| w.contains("pg9"))
    );
    assert_converges(&s).await;
}

#[tokio::test]
async fn cluster_views_that_disagree_are_ambiguous() {
    let s = routed(Options::default()).await;
    s.fake.node("pg2").set(
        "/cluster",
        Reply::Json(200, cluster_json("pgha", Some("pg2"), &NAMES, 2)),
    );
    s.fake
        .node("pg2")
        .set("/patroni", patroni("pg2", "primary", "running", 2));
    let r = reconcile_bounded(&s).await;
    assert_fail_static(&s, &r, "ambiguous", "disagree").await;
    assert_converges(&s).await;
}

#[tokio::test]
async fn two_nodes_claiming_primary_route_to_the_dcs_leader_only() {
    let s = routed(Options::default()).await;
    // pg2 claims primary on the same timeline without the leader lock (a frozen old primary).
    s.fake
        .node("pg2")
        .set("/patroni", patroni("pg2", "primary", "running", 1));
    let r = reconcile_bounded(&s).await;
    let d = &r.clusters[0].decision;
    assert_eq!(d.primary(), Some("pg1"));
    assert_eq!(d.stale_primaries, vec!["pg2".to_string()]);
    assert!(d.reason.contains("stale"), "{}", d.reason);
    s.assert_routed_to(0).await;
    // Claiming a newer timeline makes the DCS view suspect: nothing moves.
    s.fake
        .node("pg2")
        .set("/patroni", patroni("pg2", "primary", "running", 7));
    let r = reconcile_bounded(&s).await;
    assert_fail_static(&s, &r, "ambiguous", "timeline 7").await;
    assert_converges(&s).await;
}

#[tokio::test]
async fn the_dead_leader_still_listed_by_the_dcs_is_fail_static() {
    let s = routed(Options::default()).await;
    s.fake.node("pg1").fail(Reply::Close);
    let r = reconcile_bounded(&s).await;
    assert_fail_static(&s, &r, "no_primary", "pg1 does not answer").await;
    assert_converges(&s).await;
}

#[tokio::test]
async fn dcs_down_cluster_closes_the_connection_and_nothing_moves() {
    let s = routed(Options::default()).await;
    // Real behaviour with etcd down: /cluster gets no HTTP answer; /patroni still answers.
    for n in &s.fake.nodes {
        n.set("/cluster", Reply::Close);
    }
    let mut unlocked: Value =
        serde_json::from_str(&patroni_json("pgha", "pg1", "primary", "running", 1)).expect("json");
    unlocked["cluster_unlocked"] = json!(true);
    unlocked["failsafe_mode_is_active"] = json!(true);
    s.fake
        .node("pg1")
        .set("/patroni", Reply::Json(200, unlocked.to_string()));
    let r = reconcile_bounded(&s).await;
    assert_fail_static(&s, &r, "no_primary", "no node answered /cluster").await;
    assert_converges(&s).await;
}

#[tokio::test]
async fn legacy_master_role_is_routed() {
    let s = routed(Options::default()).await;
    let view = cluster_json("pgha", Some("pg2"), &NAMES, 3).replace("\"leader\"", "\"master\"");
    for n in &s.fake.nodes {
        n.set("/cluster", Reply::Json(200, view.clone()));
    }
    s.fake
        .node("pg1")
        .set("/patroni", patroni("pg1", "replica", "running", 3));
    s.fake
        .node("pg2")
        .set("/patroni", patroni("pg2", "master", "running", 3));
    let r = reconcile_bounded(&s).await;
    assert_eq!(
        r.clusters[0].decision.primary(),
        Some("pg2"),
        "{}",
        r.to_text()
    );
    s.assert_routed_to(1).await;
}

#[tokio::test]
async fn standby_leader_demoted_and_uninitialized_leaders_are_not_routed() {
    let s = routed(Options::default()).await;
    s.fake.set_leader("pg2", 2);
    for (role, state) in [
        ("standby_leader", "running"),
        ("demoted", "running"),
        ("uninitialized", "stopped"),
    ] {
        s.fake
            .node("pg2")
            .set("/patroni", patroni("pg2", role, state, 2));
        let r = reconcile_bounded(&s).await;
        assert_fail_static(&s, &r, "no_primary", "not a running primary").await;
    }
    assert_converges(&s).await;
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
    for n in &s.fake.nodes {
        n.set("/cluster", Reply::Json(200, view.to_string()));
    }
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

#[tokio::test]
async fn redirects_are_not_followed() {
    let s = routed(Options::default()).await;
    s.fake.set_leader("pg2", 2);
    let elsewhere = format!("{}/patroni", s.fake.node("pg3").url);
    s.fake
        .node("pg2")
        .set("/patroni", Reply::Redirect(elsewhere));
    let r = reconcile_bounded(&s).await;
    assert_fail_static(&s, &r, "no_primary", "unexpected HTTP status 302").await;
    assert_converges(&s).await;
}

// ---- TLS ---------------------------------------------------------------------------------

struct Pki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
    client_cert_pem: String,
    client_key_pem: String,
    dir: std::path::PathBuf,
}

fn pki(require_client_cert: bool) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("key");
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&server_key, &issuer)
        .expect("server cert");
    let client_key = KeyPair::generate().expect("key");
    let client_cert = CertificateParams::new(vec!["router".to_string()])
        .expect("params")
        .signed_by(&client_key, &issuer)
        .expect("client cert");

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions");
    let chain = vec![server_cert.der().clone()];
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).expect("key der");
    let server = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_cert.der().clone()).expect("root");
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("verifier");
        builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
    } else {
        builder.with_no_client_auth().with_single_cert(chain, key)
    }
    .expect("server config");
    let dir = std::env::temp_dir().join(common::unique("pki-"));
    std::fs::create_dir_all(&dir).expect("pki dir");
    Pki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
        dir,
    }
}

impl Pki {
    fn write(&self, name: &str, pem: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, pem).expect("write pem");
        p.display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn tls_with_a_private_ca_works_and_a_wrong_certificate_is_refused() {
    let pki = pki(false);
    let ca = pki.write("ca.pem", &pki.ca_pem);
    let s = Scenario::new(Options {
        tls: Some(Arc::clone(&pki.server)),
        extra: json!({"patroni": {"request_timeout": "500ms", "poll_deadline": "2s", "tls": {"ca_file": ca}}}),
        ..Options::default()
    })
    .await;
    s.fake.set_leader("pg1", 1);
    let r = reconcile_bounded(&s).await;
    assert!(r.ok, "{}", r.to_text());
    s.assert_routed_to(0).await;

    // Without our CA the same servers are untrusted: nothing is believed, nothing moves.
    s.fake.set_leader("pg2", 2);
    let untrusting = s.router_with(|_| {}).await;
    let r = untrusting
        .run(patroni_router::domain::report::Mode::Reconcile, None)
        .await
        .expect("run");
    assert_eq!(
        r.clusters[0].decision.kind(),
        "no_primary",
        "{}",
        r.to_text()
    );
    let err = r.clusters[0].nodes[0]
        .patroni_error
        .clone()
        .unwrap_or_default();
    assert!(
        err.contains("certificate") || err.contains("connection failed"),
        "{err}"
    );
    s.assert_routed_to(0).await;
}

#[tokio::test]
async fn tls_client_certificates_are_presented_when_configured() {
    let pki = pki(true);
    let ca = pki.write("ca.pem", &pki.ca_pem);
    let cert = pki.write("client.pem", &pki.client_cert_pem);
    let key = pki.write("client.key", &pki.client_key_pem);
    let tls = json!({"ca_file": ca, "cert_file": cert, "key_file": key});
    let s = Scenario::new(Options {
        tls: Some(Arc::clone(&pki.server)),
        extra: json!({"patroni": {"request_timeout": "500ms", "poll_deadline": "2s", "tls": tls}}),
        ..Options::default()
    })
    .await;
    s.fake.set_leader("pg1", 1);
    let r = reconcile_bounded(&s).await;
    assert!(r.ok, "{}", r.to_text());
    s.assert_routed_to(0).await;
    // Without the client certificate the server refuses us.
    s.fake.set_leader("pg2", 2);
    let anonymous = s
        .router_with(|c| c["patroni"]["tls"] = json!({"ca_file": pki.dir.join("ca.pem")}))
        .await;
    let r = anonymous
        .run(patroni_router::domain::report::Mode::Reconcile, None)
        .await
        .expect("run");
    assert_eq!(
        r.clusters[0].decision.kind(),
        "no_primary",
        "{}",
        r.to_text()
    );
    s.assert_routed_to(0).await;
}

// ---- AWS side (through the fault proxy) --------------------------------------------------

fn fast_aws(attempts: u32) -> Value {
    json!({"aws": {"attempt_timeout": "1s", "max_attempts": attempts}})
}

async fn routed_via_proxy(attempts: u32) -> Scenario {
    routed(Options {
        proxy: true,
        extra: fast_aws(attempts),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let s = routed_via_proxy(4).await;
    s.fake.set_leader("pg2", 2);
    s.proxy()
        .inject("RegisterTargets", Fault::Error(400, "Throttling"), 2);
    s.proxy().inject(
        "ChangeResourceRecordSets",
        Fault::Error(400, "PriorRequestNotComplete"),
        1,
    );
    s.proxy().reset_counts();
    let r = reconcile_bounded(&s).await;
    assert!(r.ok, "retries absorbed the throttling: {}", r.to_text());
    assert_eq!(s.proxy().calls("RegisterTargets"), 3);
    assert_eq!(s.proxy().calls("ChangeResourceRecordSets"), 2);
    s.assert_routed_to(1).await;
}

#[tokio::test]
async fn persistent_throttling_is_reported_and_the_next_run_converges() {
    let s = routed_via_proxy(2).await;
    s.fake.set_leader("pg2", 2);
    s.proxy()
        .inject("RegisterTargets", Fault::Error(400, "Throttling"), 100);
    let r = reconcile_bounded(&s).await;
    assert!(!r.ok);
    let errors = r.clusters[0]
        .errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        errors.contains("RegisterTargets") && errors.contains("Throttling"),
        "{errors}"
    );
    let changes = &r.clusters[0].changes;
    assert!(changes.iter().any(|c| c.status == ChangeStatus::Failed));
    assert!(
        changes.iter().any(|c| c.status == ChangeStatus::Skipped),
        "no deregister after a failed register: the group is never emptied"
    );
    assert_eq!(
        s.targets().await,
        vec![s.instance(0)],
        "the old primary stays registered"
    );
    s.proxy().clear();
    let r = s.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    s.assert_routed_to(1).await;
    assert_eq!(writes(&s.reconcile().await), 0);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let s = routed_via_proxy(4).await;
    s.fake.set_leader("pg2", 2);
    s.proxy().inject(
        "DescribeTargetHealth",
        Fault::Error(503, "ServiceUnavailable"),
        2,
    );
    let r = reconcile_bounded(&s).await;
    assert!(r.ok, "{}", r.to_text());
    s.assert_routed_to(1).await;
}

#[tokio::test]
async fn aws_timeouts_are_bounded_and_reported() {
    let s = routed_via_proxy(2).await;
    s.fake.set_leader("pg2", 2);
    s.proxy().inject(
        "DescribeTargetHealth",
        Fault::Delay(Duration::from_secs(3)),
        2,
    );
    let r = reconcile_bounded(&s).await;
    assert!(!r.ok);
    let errors = r.clusters[0]
        .errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        errors.contains("DescribeTargetHealth") && errors.to_lowercase().contains("timeout"),
        "{errors}"
    );
    assert_eq!(
        s.targets().await,
        vec![s.instance(0)],
        "an unread group is not changed"
    );
    s.proxy().clear();
    assert!(s.reconcile().await.ok);
    s.assert_routed_to(1).await;
}

#[tokio::test]
async fn register_succeeding_and_deregister_failing_is_a_partial_apply_that_converges() {
    let s = routed_via_proxy(1).await;
    s.fake.set_leader("pg2", 2);
    s.proxy()
        .inject("DeregisterTargets", Fault::Error(500, "InternalFailure"), 1);
    let r = reconcile_bounded(&s).await;
    assert!(!r.ok);
    let statuses: Vec<(String, ChangeStatus)> = r.clusters[0]
        .changes
        .iter()
        .filter(|c| c.resource.starts_with("arn:"))
        .map(|c| (format!("{:?}", c.action), c.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("Register".to_string(), ChangeStatus::Applied),
            ("Deregister".to_string(), ChangeStatus::Failed)
        ]
    );
    let mut both = vec![s.instance(0), s.instance(1)];
    both.sort();
    assert_eq!(s.targets().await, both);
    let r = s.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    s.assert_routed_to(1).await;
    assert_eq!(writes(&s.reconcile().await), 0);
}

#[tokio::test]
async fn access_denied_names_the_call_and_the_fix() {
    let s = routed_via_proxy(1).await;
    s.fake.set_leader("pg2", 2);
    s.proxy().inject(
        "ListResourceRecordSets",
        Fault::Error(403, "AccessDenied"),
        1,
    );
    let r = reconcile_bounded(&s).await;
    let errors = r.clusters[0]
        .errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        errors.contains("ListResourceRecordSets") && errors.contains("grant the router's role"),
        "{errors}"
    );
    assert_eq!(
        s.a_record().await,
        vec![s.ip(0)],
        "an unread record is not changed"
    );
    assert_eq!(
        s.targets().await,
        vec![s.instance(1)],
        "the target group is independent of the record"
    );
}

#[tokio::test]
async fn a_missing_target_group_is_reported_and_dns_still_routes() {
    let s = routed(Options::default()).await;
    s.fake.set_leader("pg2", 2);
    let gone = s.tg.replace("targetgroup/", "targetgroup/gone-");
    let router = s
        .router_with(|c| c["clusters"][0]["target_group"]["arn"] = json!(gone))
        .await;
    let r = router
        .run(patroni_router::domain::report::Mode::Reconcile, None)
        .await
        .expect("run");
    let errors = r.clusters[0]
        .errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        errors.contains("gone-") && errors.contains("target_group.arn"),
        "{errors}"
    );
    assert_eq!(s.a_record().await, vec![s.ip(1)]);
}

#[tokio::test]
async fn two_reconciles_at_once_converge_and_never_flap() {
    let s = routed(Options::default()).await;
    for (leader, i) in [("pg2", 1usize), ("pg3", 2), ("pg1", 0)] {
        s.fake.set_leader(leader, 10 + i as u64);
        let (a, b) = tokio::join!(s.reconcile(), s.reconcile());
        for r in [&a, &b] {
            assert_eq!(r.clusters[0].decision.primary(), Some(leader));
            // Neither run ever asks for another node: the only failure possible is a race
            // on the same change (moto refuses deregistering what is already gone).
            for c in &r.clusters[0].changes {
                let node = c.node.as_deref().unwrap_or(leader);
                let towards_leader =
                    matches!(c.action, patroni_router::domain::report::Action::Deregister)
                        || node == leader;
                assert!(towards_leader, "{}", r.to_text());
            }
        }
        let r = s.reconcile().await;
        assert!(r.ok, "{}", r.to_text());
        s.assert_routed_to(i).await;
        assert_eq!(writes(&s.reconcile().await), 0);
    }
}
