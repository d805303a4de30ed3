//! Shared test harness: moto (the AWS emulator) through the real AWS SDK, and fake Patroni
//! nodes. moto is started by `scripts/with-moto.sh` (what `make test` uses), which exports
//! `AWS_ENDPOINT_URL`; these helpers refuse to run against anything but loopback.

#![allow(dead_code)]

pub mod aws_proxy;
pub use patroni_router::testkit::fake_patroni;
pub mod nlb_forwarder;
pub mod scenario;
pub mod writer;

use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetTypeEnum};
use aws_sdk_route53::types::{HostedZoneConfig, Vpc, VpcRegion};
use patroni_router::adapters::sdk::AwsClients;
use patroni_router::config::Config;
use patroni_router::engine::Router;

/// The moto endpoint, checked to be on loopback so a test can never touch real AWS.
pub fn moto_endpoint() -> String {
    let ep = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        ep.starts_with("http://127.0.0.1:") || ep.starts_with("http://localhost:"),
        "AWS integration tests need moto on loopback: run `make test` (or \
         `scripts/with-moto.sh cargo test`), which starts moto and sets AWS_ENDPOINT_URL; got {ep:?}"
    );
    ep
}

pub async fn aws() -> AwsClients {
    moto_endpoint();
    AwsClients::new(&Default::default()).await
}

/// A name no other test (or earlier run against the same moto) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}{n}{}", std::process::id() % 1000, nanos % 10_000)
}

/// An EC2 Query API call to moto. We do not link the (large) EC2 SDK crate for test setup;
/// moto routes by the credential scope and does not check signatures.
async fn ec2(params: &[(&str, &str)]) -> String {
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "eu-west-1".into());
    let mut form: Vec<(&str, &str)> = vec![("Version", "2016-11-15")];
    form.extend_from_slice(params);
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('/', "%2F")))
        .collect::<Vec<_>>()
        .join("&");
    let resp = reqwest::Client::new()
        .post(format!("{}/", moto_endpoint()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/ec2/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body)
        .send()
        .await
        .expect("moto EC2 call");
    let status = resp.status();
    let text = resp.text().await.expect("moto EC2 body");
    assert!(status.is_success(), "EC2 {params:?} failed: {text}");
    text
}

fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = xml[start..].find('<').expect("closing tag") + start;
    xml[start..end].to_string()
}

/// A VPC with a subnet and one EC2 instance per node, as a real deployment has.
pub struct Network {
    pub vpc_id: String,
    pub instances: Vec<(String, String)>, // (instance id, private ip)
}

pub async fn network(nodes: usize) -> Network {
    let third = (unique("").len() % 200) + 1;
    let vpc = ec2(&[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")]).await;
    let vpc_id = xml_value(&vpc, "vpcId");
    let cidr = format!("10.0.{third}.0/24");
    let subnet = ec2(&[
        ("Action", "CreateSubnet"),
        ("VpcId", &vpc_id),
        ("CidrBlock", &cidr),
    ])
    .await;
    let subnet_id = xml_value(&subnet, "subnetId");
    let mut instances = Vec::new();
    for i in 0..nodes {
        let ip = format!("10.0.{third}.{}", 10 + i);
        let run = ec2(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-12c6146b"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("InstanceType", "t3.micro"),
            ("SubnetId", &subnet_id),
            ("PrivateIpAddress", &ip),
        ])
        .await;
        instances.push((xml_value(&run, "instanceId"), ip));
    }
    Network { vpc_id, instances }
}

pub async fn create_target_group(aws: &AwsClients, vpc_id: &str, ip: bool) -> String {
    let out = aws
        .elb
        .create_target_group()
        .name(unique("tg"))
        .protocol(ProtocolEnum::Tcp)
        .port(5432)
        .vpc_id(vpc_id)
        .target_type(if ip {
            TargetTypeEnum::Ip
        } else {
            TargetTypeEnum::Instance
        })
        .send()
        .await
        .expect("create target group in moto");
    out.target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_string()
}

/// A private hosted zone in the VPC; returns (zone id without prefix, zone name).
pub async fn create_zone(aws: &AwsClients, vpc_id: &str) -> (String, String) {
    let name = format!("{}.internal.", unique("z"));
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "eu-west-1".into());
    let out = aws
        .route53
        .create_hosted_zone()
        .name(&name)
        .caller_reference(unique("ref"))
        .hosted_zone_config(HostedZoneConfig::builder().private_zone(true).build())
        .vpc(
            Vpc::builder()
                .vpc_id(vpc_id)
                .vpc_region(VpcRegion::from(region.as_str()))
                .build(),
        )
        .send()
        .await
        .expect("create hosted zone in moto");
    let id = out
        .hosted_zone()
        .expect("zone")
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    (id, name)
}

/// What moto holds: registered targets as `id:port`, sorted.
pub async fn registered(aws: &AwsClients, arn: &str) -> Vec<String> {
    let out = aws
        .elb
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .expect("describe target health");
    let mut v: Vec<String> = out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target())
        .map(|t| format!("{}:{}", t.id().unwrap_or("?"), t.port().unwrap_or(0)))
        .collect();
    v.sort();
    v
}

/// What moto holds at `name`: `(type, set identifier, failover, values)` per record set.
pub async fn records(
    aws: &AwsClients,
    zone: &str,
    name: &str,
) -> Vec<(String, Option<String>, Option<String>, Vec<String>)> {
    let out = aws
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .expect("list records");
    let mut v: Vec<_> = out
        .resource_record_sets()
        .iter()
        .filter(|r| r.name().trim_end_matches('.') == name.trim_end_matches('.'))
        .map(|r| {
            (
                r.r#type().as_str().to_string(),
                r.set_identifier().map(str::to_string),
                r.failover().map(|f| f.as_str().to_string()),
                r.resource_records()
                    .iter()
                    .map(|x| x.value().to_string())
                    .collect(),
            )
        })
        .collect();
    v.sort();
    v
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
