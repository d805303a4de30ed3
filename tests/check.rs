//! `check`, the preflight, against moto and FAKE Patroni nodes, one dependency broken at a time:
//! each failure is named on its own line with its fix, the rest stays ok, and nothing in AWS
//! changes.

mod common;

use common::aws_proxy::Fault;
use common::cli::{run, stdout, write_config};
use common::scenario::{Options, Scenario};
use patroni_router::domain::check::{CheckReport, Status};
use serde_json::json;

async fn healthy(proxy: bool) -> Scenario {
    let s = Scenario::new(Options {
        proxy,
        ..Options::default()
    })
    .await;
    s.fake.set_leader("pg1", 1);
    s
}

/// The one failed check, asserting every other one passed (or was skipped).
fn only_failure<'a>(r: &'a CheckReport, names: &str) -> &'a patroni_router::domain::check::Check {
    let failed: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.status == Status::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "exactly one failure:\n{}", r.to_text());
    assert!(failed[0].dependency.contains(names), "{}", r.to_text());
    failed[0]
}

#[tokio::test]
async fn a_healthy_deployment_passes_every_check_and_nothing_changes() {
    let s = healthy(false).await;
    let before = s.routing().await;
    let r = s.router.check().await;
    assert!(r.ok, "{}", r.to_text());
    let deps: Vec<&str> = r.checks.iter().map(|c| c.dependency.as_str()).collect();
    for want in [
        "config",
        "patroni pgha/pg1",
        "patroni pgha/pg3",
        "target group",
        "hosted zone",
        "AWS writes",
    ] {
        assert!(
            deps.iter().any(|d| d.starts_with(want)),
            "no {want} line:\n{}",
            r.to_text()
        );
    }
    assert_eq!(s.routing().await, before, "check changes nothing");
}

#[tokio::test]
async fn a_closed_patroni_port_is_named_with_its_fix() {
    let s = healthy(false).await;
    s.fake.node("pg2").stop_listening().await;
    let r = s.router.check().await;
    let c = only_failure(&r, "pgha/pg2");
    assert!(c.detail.contains("refused"), "{}", r.to_text());
    assert!(
        c.fix.as_deref().unwrap_or_default().contains("listening"),
        "{}",
        r.to_text()
    );
}

#[tokio::test]
async fn an_unreachable_aws_endpoint_fails_the_aws_lines_with_the_network_fix() {
    let s = healthy(false).await;
    let router = s
        .router_with(|c| {
            c["aws"] = json!({"endpoint_url": "http://127.0.0.1:9", "attempt_timeout": "1s", "max_attempts": 1})
        })
        .await;
    let r = router.check().await;
    let failed: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.status == Status::Failed)
        .collect();
    assert!(
        failed
            .iter()
            .any(|c| c.dependency.starts_with("target group"))
            && failed
                .iter()
                .any(|c| c.dependency.starts_with("hosted zone")),
        "{}",
        r.to_text()
    );
    for c in failed {
        assert!(
            c.fix.as_deref().unwrap_or_default().contains("NAT"),
            "{}",
            r.to_text()
        );
    }
    assert!(
        r.checks
            .iter()
            .filter(|c| c.dependency.starts_with("patroni"))
            .all(|c| c.status == Status::Ok)
    );
}

#[tokio::test]
async fn a_missing_target_group_is_named_with_its_fix() {
    let s = healthy(false).await;
    let missing = s.tg.replace(
        |ch: char| ch.is_ascii_hexdigit() && ch.is_ascii_digit(),
        "0",
    );
    let router = s
        .router_with(|c| c["clusters"][0]["target_group"]["arn"] = json!(missing))
        .await;
    let r = router.check().await;
    let c = only_failure(&r, "target group");
    assert!(
        c.fix
            .as_deref()
            .unwrap_or_default()
            .contains("does not exist"),
        "{}",
        r.to_text()
    );
}

#[tokio::test]
async fn access_denied_names_the_iam_fix() {
    let s = healthy(true).await;
    s.proxy().inject(
        "DescribeTargetHealth",
        Fault::Error(403, "AccessDenied"),
        10,
    );
    let r = s.router.check().await;
    let c = only_failure(&r, "target group");
    assert!(c.detail.contains("DescribeTargetHealth"), "{}", r.to_text());
    assert!(
        c.fix.as_deref().unwrap_or_default().contains("IAM"),
        "{}",
        r.to_text()
    );
}

#[tokio::test]
async fn the_cli_prints_one_line_per_dependency_and_exits_2_on_a_failure() {
    let s = healthy(false).await;
    let config = write_config(&s.config.to_string());
    let ok = run(&["check", "--config", config.arg()], &[]).await;
    let text = stdout(&ok);
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(text.contains("checks passed"), "{text}");
    s.fake.node("pg3").stop_listening().await;
    let bad = run(&["check", "--config", config.arg()], &[]).await;
    let text = stdout(&bad);
    assert_eq!(bad.status.code(), Some(2), "{text}");
    assert!(
        text.contains("FAIL  patroni pgha/pg3") && text.contains("fix:"),
        "{text}"
    );
}
