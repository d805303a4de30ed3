//! Shared test harness: moto (the AWS emulator) through the real AWS SDK, and fake Patroni
//! nodes, both from the library's testkit (`testkit::moto`, `testkit::fake_patroni`); these are
//! the panicking forms tests want. moto is started by `scripts/with-moto.sh` (what `make test`
//! uses), which exports `AWS_ENDPOINT_URL`; the testkit refuses anything but loopback.

#![allow(dead_code)]

pub mod aws_proxy;
pub mod cli;
pub mod cluster;
pub mod lambda;
pub use patroni_router::testkit::fake_patroni;
pub mod nlb_forwarder;
pub mod pki;
pub mod relay;
pub mod scenario;
pub mod serve;
pub mod writer;

use patroni_router::adapters::sdk::AwsClients;
use patroni_router::config::Config;
use patroni_router::engine::Router;
use patroni_router::testkit::moto;
pub use patroni_router::testkit::moto::{Network, RecordSet, unique};

/// The moto endpoint, checked to be on loopback so a test can never touch real AWS.
pub fn moto_endpoint() -> String {
    moto::endpoint().unwrap_or_else(|e| panic!("AWS integration tests: {e}"))
}

pub async fn aws() -> AwsClients {
    moto::clients()
        .await
        .unwrap_or_else(|e| panic!("AWS integration tests: {e}"))
}

/// A VPC with a subnet and one EC2 instance per node (pg1, pg2, ...), as a real deployment has.
pub async fn network(nodes: usize) -> Network {
    let names: Vec<String> = (1..=nodes).map(|i| format!("pg{i}")).collect();
    moto::network(&names)
        .await
        .expect("VPC, subnet and instances in moto")
}

pub async fn create_target_group(aws: &AwsClients, vpc_id: &str, ip: bool) -> String {
    moto::create_target_group(aws, vpc_id, &unique("tg"), ip, false)
        .await
        .expect("create target group in moto")
}

/// A private hosted zone in the VPC; returns (zone id without prefix, zone name).
pub async fn create_zone(aws: &AwsClients, vpc_id: &str) -> (String, String) {
    let name = format!("{}.internal.", unique("z"));
    let id = moto::create_zone(aws, vpc_id, &name)
        .await
        .expect("create hosted zone in moto");
    (id, name)
}

/// What moto holds: registered targets as `id:port`, sorted.
pub async fn registered(aws: &AwsClients, arn: &str) -> Vec<String> {
    moto::registered(aws, arn)
        .await
        .expect("describe target health")
}

/// The address records (A, AAAA) moto holds at `name`: `(type, set identifier, failover,
/// values)` per record set. The router's TXT marker at the name is [`marker`].
pub async fn records(aws: &AwsClients, zone: &str, name: &str) -> Vec<RecordSet> {
    let all = moto::records(aws, zone, name).await.expect("list records");
    all.into_iter()
        .filter(|r| r.0 == "A" || r.0 == "AAAA")
        .collect()
}

/// The router's marker at `name` (the TXT record's value), if there is one.
pub async fn marker(aws: &AwsClients, zone: &str, name: &str) -> Option<String> {
    let all = moto::records(aws, zone, name).await.expect("list records");
    all.into_iter()
        .filter(|r| r.0 == "TXT")
        .flat_map(|r| r.3)
        .find(|v| v.contains("heritage=patroni-router"))
}

/// The config's `nodes` for fake Patroni nodes on these instances (id, private ip).
pub fn nodes_json(
    fake: &fake_patroni::FakeCluster,
    instances: &[(String, String)],
) -> Vec<serde_json::Value> {
    fake.nodes
        .iter()
        .zip(instances)
        .map(|(n, (id, ip))| serde_json::json!({"name": n.name, "api_url": n.url, "address": ip, "instance_id": id}))
        .collect()
}

/// A router over `config_json` (already pointing at fake nodes and moto resources).
pub async fn router(config_json: &str) -> Router {
    moto_endpoint();
    let config = Config::from_json(config_json, "test").expect("test config is valid");
    let aws = AwsClients::new(&config.aws).await;
    Router::new(config, aws).expect("router")
}
