//! Patroni's answers are untrusted input: parse any bytes as /patroni and /cluster, and run
//! whatever parses through `decide` and `plan`. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use patroni_router::config::Config;
use patroni_router::domain::decide::decide;
use patroni_router::domain::patroni::{NodeObservation, PollError, parse_cluster, parse_patroni};
use patroni_router::domain::aws::{DnsState, TargetGroupState, TargetType};
use patroni_router::domain::plan::{plan_dns, plan_read_dns, plan_target_group, read_set};

const CONFIG: &str = r#"{"clusters": [{"scope": "pgha", "nodes": [
  {"name": "pg1", "api_url": "http://10.0.1.10:8008", "address": "10.0.1.10", "instance_id": "i-1"},
  {"name": "pg2", "api_url": "http://10.0.1.11:8008", "address": "10.0.1.11", "instance_id": "i-2"}],
  "target_group": {"arn": "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/t/1", "port": 5432},
  "dns": {"hosted_zone_id": "Z1", "record_name": "db.example.", "routing": "failover"},
  "replicas": {"max_lag_bytes": 1000, "fallback_to_primary": false,
    "target_group": {"arn": "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/r/1", "port": 5432},
    "dns": {"hosted_zone_id": "Z1", "record_name": "ro.example.", "routing": "multivalue"}}}]}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::from_json(CONFIG, "fuzz") else { return };
    let cluster = &config.clusters[0];
    // The same bytes as both answers of pg1; pg2's answers are the halves swapped.
    let (a, b) = data.split_at(data.len() / 2);
    let obs = |name: &str, p: &[u8], c: &[u8]| NodeObservation {
        name: name.to_string(),
        patroni: parse_patroni(p),
        cluster: parse_cluster(c),
    };
    let observations = vec![
        obs("pg1", data, data),
        obs("pg2", b, a),
        NodeObservation {
            name: "pg3".into(),
            patroni: Err(PollError::Timeout("x".into())),
            cluster: Err(PollError::Timeout("x".into())),
        },
    ];
    let d = decide(cluster, &observations);
    if let Some(p) = d.primary() {
        assert!(cluster.node(p).is_some(), "routed to an unconfigured node");
    }
    let tg = TargetGroupState { arn: "a".into(), target_type: TargetType::Instance, targets: vec![] };
    if let Some(dns) = &cluster.dns {
        let _ = plan_dns(cluster, dns, &d, &DnsState { zone_id: "Z1".into(), records: vec![] });
    }
    for tg_config in &cluster.target_groups {
        let plan = plan_target_group(cluster, tg_config, &d, &tg);
        assert!(plan.deregister.is_empty(), "deregistered from an empty group");
        for t in &plan.register {
            assert!(t.id == "i-1" || t.id == "i-2", "registered an unconfigured node");
        }
    }
    if let Some(r) = &cluster.replicas {
        if let Some(set) = read_set(r, &d) {
            assert!(set.iter().all(|n| cluster.node(n).is_some()), "read set outside the config");
        }
        if let Some(dns) = &r.dns {
            let _ = plan_read_dns(cluster, r, dns, &d, &DnsState { zone_id: "Z1".into(), records: vec![] });
        }
    }
});
