//! Config parsing and validation: every mistake names its field.

use std::time::Duration;

use super::*;

const GOOD: &str = r#"{
  "clusters": [{
    "scope": "pgha",
    "nodes": [
      {"name": "pg1", "api_url": "http://10.0.1.10:8008", "address": "10.0.1.10", "instance_id": "i-0aaa"},
      {"name": "pg2", "api_url": "http://10.0.1.11:8008", "address": "10.0.1.11", "instance_id": "i-0bbb"}
    ],
    "target_group": {"arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg/0123456789abcdef", "port": 5432, "strategy": "primary-only"},
    "dns": {"hosted_zone_id": "Z0123", "record_name": "db.example.internal.", "ttl": 10, "routing": "simple"}
  }]
}"#;

fn err_of(text: &str) -> String {
    Config::from_json(text, "test").unwrap_err().to_string()
}

fn with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "test edit {from:?} does not apply");
    GOOD.replacen(from, to, 1)
}

#[test]
fn the_documented_example_parses() {
    let c = Config::from_json(GOOD, "test").expect("valid");
    assert_eq!(c.clusters[0].nodes.len(), 2);
    assert_eq!(
        c.clusters[0].target_groups.first().map(|t| t.port),
        Some(5432)
    );
    assert_eq!(c.patroni.request_timeout, Duration::from_secs(2));
}

const READ: &str = r#", "replicas": {"max_lag_bytes": 4096,
    "target_group": {"arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg-ro/0123456789abcdef", "port": 5432},
    "dns": {"hosted_zone_id": "Z0123", "record_name": "ro.example.internal.", "routing": "multivalue"}}"#;

fn with_read(read: &str) -> String {
    with(
        "\"routing\": \"simple\"}",
        &format!("\"routing\": \"simple\"}}{read}"),
    )
}

#[test]
fn the_read_endpoint_parses_into_a_replicas_target_group() {
    let c = Config::from_json(&with_read(READ), "test").expect("valid");
    let c = &c.clusters[0];
    let r = c.replicas.as_ref().expect("replicas");
    assert_eq!((r.max_lag_bytes, r.fallback_to_primary), (4096, true));
    let strategies: Vec<Strategy> = c.target_groups.iter().map(|t| t.strategy).collect();
    assert_eq!(strategies, vec![Strategy::PrimaryOnly, Strategy::Replicas]);
}

#[test]
fn read_endpoint_mistakes_name_the_field() {
    let e = err_of(&with_read(&READ.replace(
        "\"port\": 5432}",
        "\"port\": 5432, \"strategy\": \"members\"}",
    )));
    assert!(
        e.contains("replicas.target_group") && e.contains("unknown field `strategy`"),
        "{e}"
    );
    let e = err_of(&with_read(&READ.replace("multivalue", "failover")));
    assert!(e.contains("clusters[0].replicas.dns.routing"), "{e}");
    let e = err_of(&with_read(&READ.replace("ro.example", "db.example")));
    assert!(
        e.contains("clusters[0].replicas.dns.record_name") && e.contains("two"),
        "{e}"
    );
    let e = err_of(&with_read(&READ.replace("pg-ro", "pg")));
    assert!(
        e.contains("clusters[0].replicas.target_group.arn") && e.contains("twice"),
        "{e}"
    );
    let e = err_of(&with_read(r#", "replicas": {"max_lag_bytes": 1}"#));
    assert!(
        e.contains("clusters[0].replicas") && e.contains("routes nothing"),
        "{e}"
    );
    let e = err_of(&with(
        "\"routing\": \"simple\"",
        "\"routing\": \"multivalue\"",
    ));
    assert!(
        e.contains("clusters[0].dns.routing") && e.contains("read endpoint"),
        "{e}"
    );
    let e = err_of(&with(
        "\"strategy\": \"primary-only\"",
        "\"strategy\": \"replicas\"",
    ));
    assert!(
        e.contains("clusters[0].target_group.strategy") && e.contains("move it"),
        "{e}"
    );
}

#[test]
fn unknown_key_names_the_field() {
    let e = err_of(&with("\"ttl\": 10", "\"ttl\": 10, \"tll\": 3"));
    assert!(e.contains("clusters[0].dns"), "{e}");
    assert!(e.contains("unknown field `tll`"), "{e}");
}

#[test]
fn duplicate_node_is_rejected() {
    let e = err_of(&with("\"name\": \"pg2\"", "\"name\": \"pg1\""));
    assert!(
        e.contains("clusters[0].nodes[1].name") && e.contains("duplicate"),
        "{e}"
    );
}

#[test]
fn bad_arn_is_rejected() {
    let e = err_of(&with(
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg/0123456789abcdef",
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/x/1",
    ));
    assert!(
        e.contains("target_group.arn") && e.contains("targetgroup/NAME/ID"),
        "{e}"
    );
}

#[test]
fn ttl_out_of_range_is_rejected() {
    let e = err_of(&with("\"ttl\": 10", "\"ttl\": 86400"));
    assert!(e.contains("dns.ttl") && e.contains("out of range"), "{e}");
    let e = err_of(&with("\"ttl\": 10", "\"ttl\": 0"));
    assert!(e.contains("dns.ttl"), "{e}");
}

#[test]
fn a_cluster_without_target_is_rejected() {
    let no_dns = GOOD.replace(
        ",\n    \"dns\": {\"hosted_zone_id\": \"Z0123\", \"record_name\": \"db.example.internal.\", \"ttl\": 10, \"routing\": \"simple\"}",
        "",
    );
    let neither = no_dns.replace(
        ",\n    \"target_group\": {\"arn\": \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg/0123456789abcdef\", \"port\": 5432, \"strategy\": \"primary-only\"}",
        "",
    );
    assert_ne!(no_dns, GOOD, "the test edit applies");
    assert_ne!(neither, no_dns, "the test edit applies");
    assert!(Config::from_json(&no_dns, "t").is_ok());
    let e = err_of(&neither);
    assert!(e.contains("nothing to route"), "{e}");
}

#[test]
fn bad_address_and_url_are_named() {
    let e = err_of(&with("\"address\": \"10.0.1.11\"", "\"address\": \"db-2\""));
    assert!(e.contains("clusters[0].nodes[1].address"), "{e}");
    let e = err_of(&with("http://10.0.1.11:8008", "10.0.1.11:8008"));
    assert!(e.contains("clusters[0].nodes[1].api_url"), "{e}");
}

#[test]
fn bad_strategy_lists_the_choices() {
    let e = err_of(&with("primary-only", "primary"));
    assert!(e.contains("strategy") && e.contains("members"), "{e}");
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for text in [
        "",
        "{",
        "[]",
        "null",
        "{\"clusters\": 3}",
        "{\"clusters\": []}",
    ] {
        assert!(Config::from_json(text, "t").is_err(), "{text}");
    }
}

#[test]
fn durations_parse_and_bad_ones_are_named() {
    let c = Config::from_json(
        &GOOD.replacen('{', "{\"patroni\": {\"request_timeout\": \"500ms\"},", 1),
        "t",
    )
    .expect("valid");
    assert_eq!(c.patroni.request_timeout, Duration::from_millis(500));
    let e = err_of(&GOOD.replacen('{', "{\"patroni\": {\"request_timeout\": \"fast\"},", 1));
    assert!(e.contains("patroni.request_timeout"), "{e}");
}

#[test]
fn a_record_routed_by_two_clusters_is_rejected() {
    let mut doc: serde_json::Value = serde_json::from_str(GOOD).expect("json");
    let mut second = doc["clusters"][0].clone();
    second["scope"] = "other".into();
    second["target_group"]["arn"] =
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg2/0123".into();
    second["dns"]["record_name"] = "DB.example.internal".into();
    doc["clusters"].as_array_mut().expect("array").push(second);
    let e = err_of(&doc.to_string());
    assert!(
        e.contains("clusters[1].dns.record_name") && e.contains("two clusters"),
        "{e}"
    );
}

#[test]
fn record_names_normalize() {
    assert_eq!(
        normalize_record_name("DB.Example.internal"),
        "db.example.internal."
    );
    assert_eq!(
        normalize_record_name("db.example.internal."),
        "db.example.internal."
    );
}

#[test]
fn a_missing_file_says_so_once() {
    let e = Config::from_file(Path::new("/nonexistent/router.json"))
        .unwrap_err()
        .to_string();
    assert_eq!(e.matches("No such file").count(), 1, "{e}");
    assert!(e.contains("/nonexistent/router.json"), "{e}");
}

#[test]
fn validation_errors_name_the_document() {
    let e = Config::from_json(&with("\"ttl\": 10", "\"ttl\": 0"), "router.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("config router.json: `clusters[0].dns.ttl`"),
        "{e}"
    );
}

#[test]
fn an_arn_that_starts_right_gets_the_real_reason() {
    let e = err_of(&with(
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg/0123456789abcdef",
        "arn:aws:elb:eu-west-1:pg",
    ));
    assert!(!e.contains("must start with arn:aws"), "{e}");
    assert!(e.contains("not elasticloadbalancing"), "{e}");
}

#[test]
fn zone_ids_and_names_are_normalized_once() {
    let c = Config::from_json(
        &with("\"Z0123\"", "\"/hostedzone/Z0123\"")
            .replace("db.example.internal.", "DB.Example.internal"),
        "t",
    )
    .expect("valid");
    let d = c.clusters[0].dns.as_ref().expect("dns");
    assert_eq!(
        (d.zone_id.as_str(), d.name.as_str()),
        ("Z0123", "db.example.internal.")
    );
}

#[test]
fn two_nodes_with_one_address_or_instance_are_refused_naming_both() {
    let e = err_of(&with(
        "\"address\": \"10.0.1.11\"",
        "\"address\": \"10.0.1.10\"",
    ));
    assert!(
        e.contains("clusters[0].nodes[1].address")
            && e.contains("\"pg1\"")
            && e.contains("10.0.1.10"),
        "{e}"
    );
    let e = err_of(&with(
        "\"instance_id\": \"i-0bbb\"",
        "\"instance_id\": \"i-0aaa\"",
    ));
    assert!(
        e.contains("clusters[0].nodes[1].instance_id") && e.contains("\"pg1\""),
        "{e}"
    );
}

#[test]
fn owner_ids_are_one_plain_word() {
    let c = Config::from_json(&GOOD.replacen('{', "{\"owner_id\": \"prod-eu-1\",", 1), "t")
        .expect("valid");
    assert_eq!(c.owner_id.as_deref(), Some("prod-eu-1"));
    for bad in ["", "two words", "a,b", "x=1"] {
        let e = err_of(&GOOD.replacen('{', &format!("{{\"owner_id\": {bad:?},"), 1));
        assert!(e.contains("`owner_id`"), "{bad:?}: {e}");
    }
}

#[test]
fn the_replay_window_is_bounded() {
    let e = err_of(&GOOD.replacen('{', "{\"webhook\": {\"max_clock_skew\": \"100years\"},", 1));
    assert!(
        e.contains("webhook.max_clock_skew") && e.contains("15m"),
        "{e}"
    );
    let ok = GOOD.replacen('{', "{\"webhook\": {\"max_clock_skew\": \"15m\"},", 1);
    assert!(Config::from_json(&ok, "t").is_ok());
}

#[test]
fn a_budget_too_small_to_route_by_is_refused_by_name() {
    let tiny = r#"{"aws": {"budget": {"share": 1e-10, "elb_describe": {"burst": 1, "per_second": 1e-10}}},"#;
    let e = err_of(&GOOD.replacen('{', tiny, 1));
    assert!(
        e.contains("aws.budget.elb_describe.per_second") && e.contains("one call a minute"),
        "{e}"
    );
    let huge = r#"{"aws": {"budget": {"route53": {"burst": 5, "per_second": 1e300}}},"#;
    let e = err_of(&GOOD.replacen('{', huge, 1));
    assert!(
        e.contains("aws.budget.route53") && e.contains("1000000"),
        "{e}"
    );
    let share = r#"{"aws": {"budget": {"share": 0.01}},"#;
    assert!(Config::from_json(&GOOD.replacen('{', share, 1), "t").is_ok());
}

#[test]
fn verify_every_is_bounded_both_ways() {
    for bad in ["5s", "500000000000years", "25h"] {
        let text = GOOD.replacen(
            '{',
            &format!("{{\"aws\": {{\"verify_every\": \"{bad}\"}},"),
            1,
        );
        let e = err_of(&text);
        assert!(
            e.contains("aws.verify_every") && e.contains("24h"),
            "{bad}: {e}"
        );
    }
    let ok = GOOD.replacen('{', "{\"aws\": {\"verify_every\": \"24h\"},", 1);
    assert!(Config::from_json(&ok, "t").is_ok());
}

/// Found by review: a `poll_deadline` of "500000000000years" was accepted and every run
/// panicked adding it to an `Instant`.
#[test]
fn durations_past_their_bound_are_refused_by_name() {
    for (section, key, bad) in [
        ("patroni", "request_timeout", "2m"),
        ("patroni", "poll_deadline", "500000000000years"),
        ("webhook", "confirm_interval", "2m"),
        ("webhook", "confirm_timeout", "1h"),
        ("aws", "attempt_timeout", "10m"),
        ("aws", "settings_check_interval", "2days"),
    ] {
        let text = GOOD.replacen(
            '{',
            &format!("{{\"{section}\": {{\"{key}\": \"{bad}\"}},"),
            1,
        );
        let e = err_of(&text);
        assert!(e.contains(&format!("{section}.{key}")), "{key}={bad}: {e}");
    }
}
