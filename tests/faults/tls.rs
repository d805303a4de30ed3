//! TLS faults: Patroni's REST API behind a private CA, with and without client certificates.

use std::sync::Arc;

use patroni_router::domain::report::{Mode, Report};
use patroni_router::engine::Router;
use serde_json::{Value, json};

use super::common::pki::{Pki, pki};
use super::common::scenario::{Options, Scenario};
use super::reconcile_bounded;

/// The fake nodes speak HTTPS with `pki`'s server config and the router uses `tls`: pg1 leads
/// and is routed.
async fn routed_over_tls(pki: &Pki, tls: Value) -> Scenario {
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
    s
}

/// pg2 now leads, but `router` (other TLS settings) cannot believe anyone: nothing moves.
async fn refused(s: &Scenario, router: Router) -> Report {
    let r = router.run(Mode::Reconcile, None).await.expect("run");
    assert_eq!(
        r.clusters[0].decision.kind(),
        "no_primary",
        "{}",
        r.to_text()
    );
    s.assert_routed_to(0).await;
    r
}

#[tokio::test]
async fn tls_with_a_private_ca_works_and_a_wrong_certificate_is_refused() {
    let pki = pki(false);
    let ca = pki.write("ca.pem", &pki.ca_pem);
    let s = routed_over_tls(&pki, json!({"ca_file": ca})).await;

    // Without our CA the same servers are untrusted: nothing is believed, nothing moves.
    s.fake.set_leader("pg2", 2);
    let r = refused(&s, s.router_with(|_| {}).await).await;
    let err = r.clusters[0].nodes[0]
        .patroni_error
        .clone()
        .unwrap_or_default();
    assert!(
        err.contains("certificate") || err.contains("connection failed"),
        "{err}"
    );
}

#[tokio::test]
async fn tls_client_certificates_are_presented_when_configured() {
    let pki = pki(true);
    let ca = pki.write("ca.pem", &pki.ca_pem);
    let cert = pki.write("client.pem", &pki.client_cert_pem);
    let key = pki.write("client.key", &pki.client_key_pem);
    let s = routed_over_tls(
        &pki,
        json!({"ca_file": ca, "cert_file": cert, "key_file": key}),
    )
    .await;
    // Without the client certificate the server refuses us.
    s.fake.set_leader("pg2", 2);
    let anonymous = s
        .router_with(|c| c["patroni"]["tls"] = json!({"ca_file": pki.dir.join("ca.pem")}))
        .await;
    refused(&s, anonymous).await;
}
