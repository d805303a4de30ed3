//! Target-group hygiene on moto: the settings each strategy needs (connection termination and a
//! short deregistration delay; a health check asking Patroni's /primary) are reported when they
//! drift, fixed with `manage_settings`, and left alone when in order.

mod common;

use common::scenario::{Options, Scenario, writes};
use patroni_router::domain::report::{Action, ChangeStatus, Mode};
use serde_json::{Value, json};

async fn attributes(s: &Scenario) -> Value {
    let out = s
        .aws
        .elb
        .describe_target_group_attributes()
        .target_group_arn(&s.tg)
        .send()
        .await
        .expect("attributes");
    let map: serde_json::Map<String, Value> = out
        .attributes()
        .iter()
        .filter_map(|a| Some((a.key()?.to_string(), json!(a.value()?))))
        .collect();
    Value::Object(map)
}

async fn health_check(s: &Scenario) -> (String, String, String, i32, i32, i32) {
    let out = s
        .aws
        .elb
        .describe_target_groups()
        .target_group_arns(&s.tg)
        .send()
        .await
        .expect("tg");
    let g = &out.target_groups()[0];
    (
        g.health_check_protocol()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        g.health_check_port().unwrap_or_default().to_string(),
        g.health_check_path().unwrap_or_default().to_string(),
        g.health_check_interval_seconds().unwrap_or(0),
        g.healthy_threshold_count().unwrap_or(0),
        g.unhealthy_threshold_count().unwrap_or(0),
    )
}

fn managed(c: &mut Value) {
    c["clusters"][0]["target_group"]["manage_settings"] = json!(true);
    c["aws"] = json!({"settings_check_interval": "0s"});
}

#[tokio::test]
async fn primary_only_drift_is_reported_but_not_fixed_by_default() {
    let s = Scenario::new(Options::default()).await;
    s.fake.set_leader("pg1", 1);
    let r = s.reconcile().await;
    assert!(r.ok, "drift is a warning, not an error: {}", r.to_text());
    let drift: Vec<(&str, &str)> = r.clusters[0]
        .drift
        .iter()
        .map(|d| (d.setting.as_str(), d.current.as_str()))
        .collect();
    assert_eq!(
        drift,
        vec![
            (
                "deregistration_delay.connection_termination.enabled",
                "false"
            ),
            ("deregistration_delay.timeout_seconds", "300"),
        ],
        "a missing attribute counts as AWS's default"
    );
    assert!(
        r.to_text().contains("set manage_settings: true to fix"),
        "{}",
        r.to_text()
    );
    assert!(
        !r.clusters[0]
            .changes
            .iter()
            .any(|c| c.action == Action::ModifySettings)
    );
    let attrs = attributes(&s).await;
    assert_ne!(
        attrs["deregistration_delay.connection_termination.enabled"],
        json!("true")
    );
}

#[tokio::test]
async fn primary_only_drift_is_fixed_with_manage_settings_then_left_alone() {
    let s = Scenario::new(Options::default()).await;
    s.fake.set_leader("pg1", 1);
    let router = s.router_with(managed).await;
    let plan = router.run(Mode::Plan, None).await.expect("plan");
    let planned: Vec<_> = plan.clusters[0]
        .changes
        .iter()
        .filter(|c| c.action == Action::ModifySettings)
        .collect();
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0].status, ChangeStatus::Planned);
    assert_ne!(
        attributes(&s).await["deregistration_delay.timeout_seconds"],
        json!("10"),
        "plan changes nothing"
    );

    let r = router.run(Mode::Reconcile, None).await.expect("run");
    assert!(r.ok, "{}", r.to_text());
    assert!(r.clusters[0].drift.iter().all(|d| d.fixed));
    let attrs = attributes(&s).await;
    assert_eq!(
        attrs["deregistration_delay.connection_termination.enabled"],
        json!("true")
    );
    assert_eq!(attrs["deregistration_delay.timeout_seconds"], json!("10"));

    let again = router.run(Mode::Reconcile, None).await.expect("run");
    assert!(again.clusters[0].drift.is_empty(), "{}", again.to_text());
    assert_eq!(writes(&again), 0, "nothing changes in steady state");
}

#[tokio::test]
async fn members_health_check_is_made_to_ask_patroni() {
    let s = Scenario::new(Options {
        strategy: "members",
        ..Options::default()
    })
    .await;
    s.fake.set_leader("pg1", 1);
    let plain = s.reconcile().await;
    let settings: Vec<&str> = plain.clusters[0]
        .drift
        .iter()
        .map(|d| d.setting.as_str())
        .collect();
    assert!(
        settings.contains(&"health_check.path") && settings.contains(&"health_check.protocol"),
        "{settings:?}"
    );

    let router = s
        .router_with(|c| {
            managed(c);
            c["clusters"][0]["target_group"]["strategy"] = json!("members");
        })
        .await;
    let r = router.run(Mode::Reconcile, None).await.expect("run");
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(
        health_check(&s).await,
        ("HTTP".into(), "8008".into(), "/primary".into(), 5, 2, 2)
    );
    let again = router.run(Mode::Reconcile, None).await.expect("run");
    assert!(again.clusters[0].drift.is_empty(), "{}", again.to_text());
    assert_eq!(writes(&again), 0);
}

#[tokio::test]
async fn settings_are_checked_once_per_interval_in_reconcile() {
    let s = Scenario::new(Options {
        proxy: true,
        ..Options::default()
    })
    .await;
    s.fake.set_leader("pg1", 1);
    let first = s.reconcile().await;
    assert!(!first.clusters[0].drift.is_empty());
    let second = s.reconcile().await;
    assert!(
        second.clusters[0].drift.is_empty(),
        "not checked again within the interval"
    );
    assert_eq!(s.proxy().calls("DescribeTargetGroupAttributes"), 1);
    assert_eq!(
        s.proxy().calls("DescribeTargetGroups"),
        1,
        "types cached, health check read with the batch"
    );
}
