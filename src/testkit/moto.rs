//! moto (the AWS emulator) set up the one way the tests, the testbed and the bench do it: a
//! VPC with a subnet and one EC2 instance per node, NLB target groups, private hosted zones,
//! and reads of what moto holds. ELBv2 and Route 53 go through the real AWS SDK; EC2 through
//! its raw Query API, so the (large) EC2 SDK crate is not linked for test setup (moto routes
//! by the credential scope and does not check signatures). Everything here refuses an
//! `AWS_ENDPOINT_URL` that is not on loopback: it can never touch real AWS.

use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetGroup, TargetTypeEnum};
use aws_sdk_route53::types::{HostedZoneConfig, Vpc, VpcRegion};

use crate::adapters::sdk::AwsClients;

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error(
        "moto must be on loopback: run through `scripts/with-moto.sh` (`make test` does), which \
         starts moto and sets AWS_ENDPOINT_URL; got {0:?}"
    )]
    NotLoopback(String),
    #[error("moto {call}: {message}")]
    Call { call: String, message: String },
}

fn call_error(call: impl Into<String>, message: impl ToString) -> MotoError {
    MotoError::Call {
        call: call.into(),
        message: message.to_string(),
    }
}

/// The moto endpoint, checked to be on loopback.
pub fn endpoint() -> Result<String, MotoError> {
    let ep = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if ep.starts_with("http://127.0.0.1:") || ep.starts_with("http://localhost:") {
        Ok(ep)
    } else {
        Err(MotoError::NotLoopback(ep))
    }
}

/// SDK clients for moto (default settings; the endpoint comes from `AWS_ENDPOINT_URL`).
pub async fn clients() -> Result<AwsClients, MotoError> {
    endpoint()?;
    Ok(AwsClients::new(&Default::default()).await)
}

fn region() -> String {
    std::env::var("AWS_REGION").unwrap_or_else(|_| "eu-west-1".into())
}

/// A name no other caller (or earlier run against the same moto) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}{n}{}", std::process::id() % 1000, nanos % 10_000)
}

/// One EC2 Query API call; the response's XML.
async fn ec2(params: &[(&str, &str)]) -> Result<String, MotoError> {
    let action = params
        .iter()
        .find(|(k, _)| *k == "Action")
        .map_or("EC2", |(_, v)| *v);
    let mut form: Vec<(&str, &str)> = vec![("Version", "2016-11-15")];
    form.extend_from_slice(params);
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('/', "%2F")))
        .collect::<Vec<_>>()
        .join("&");
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{}/ec2/aws4_request, SignedHeaders=host, Signature=0",
        region()
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/", endpoint()?))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Authorization", auth)
        .body(body)
        .send()
        .await
        .map_err(|e| call_error(action, e))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| call_error(action, e))?;
    if !status.is_success() {
        return Err(call_error(action, format!("HTTP {status}: {text}")));
    }
    Ok(text)
}

/// The text of the first `<tag>` in `xml`.
fn xml_value(xml: &str, tag: &str) -> Result<String, MotoError> {
    let open = format!("<{tag}>");
    let missing = || call_error("EC2", format!("no <{tag}> in {xml}"));
    let start = xml.find(&open).ok_or_else(missing)? + open.len();
    let end = xml[start..].find('<').ok_or_else(missing)? + start;
    Ok(xml[start..end].to_string())
}

/// A VPC `10.0.0.0/16`; its id.
pub async fn vpc() -> Result<String, MotoError> {
    let xml = ec2(&[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")]).await?;
    xml_value(&xml, "vpcId")
}

/// A subnet of `vpc_id`; its id.
pub async fn subnet(vpc_id: &str, cidr: &str) -> Result<String, MotoError> {
    let xml = ec2(&[
        ("Action", "CreateSubnet"),
        ("VpcId", vpc_id),
        ("CidrBlock", cidr),
    ])
    .await?;
    xml_value(&xml, "subnetId")
}

/// One EC2 instance at `ip` in `subnet_id`, tagged `Name=name`; its id.
pub async fn instance(subnet_id: &str, ip: &str, name: &str) -> Result<String, MotoError> {
    let xml = ec2(&[
        ("Action", "RunInstances"),
        ("ImageId", "ami-12c6146b"),
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("InstanceType", "t3.micro"),
        ("SubnetId", subnet_id),
        ("PrivateIpAddress", ip),
        ("TagSpecification.1.ResourceType", "instance"),
        ("TagSpecification.1.Tag.1.Key", "Name"),
        ("TagSpecification.1.Tag.1.Value", name),
    ])
    .await?;
    xml_value(&xml, "instanceId")
}

/// A VPC with a subnet and one EC2 instance per node, as a real deployment has.
#[derive(Debug, Clone)]
pub struct Network {
    pub vpc_id: String,
    pub instances: Vec<(String, String)>, // (instance id, private ip)
}

/// The most nodes [`network`] places in its one /24 subnet.
pub const MAX_NETWORK_NODES: usize = 240;

/// A fresh VPC, a /24 subnet (a third octet that varies between calls) and one instance per
/// name at `10.0.X.10`, `.11`, ...
pub async fn network(names: &[String]) -> Result<Network, MotoError> {
    if names.len() > MAX_NETWORK_NODES {
        return Err(call_error(
            "RunInstances",
            format!(
                "{} nodes: one subnet holds at most {MAX_NETWORK_NODES}; use ip targets",
                names.len()
            ),
        ));
    }
    let third = (unique("").len() % 200) + 1;
    let vpc_id = vpc().await?;
    let subnet_id = subnet(&vpc_id, &format!("10.0.{third}.0/24")).await?;
    let mut instances = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let ip = format!("10.0.{third}.{}", 10 + i);
        instances.push((instance(&subnet_id, &ip, name).await?, ip));
    }
    Ok(Network { vpc_id, instances })
}

/// A TCP target group on 5432 in `vpc_id`: `ip` or `instance` targets, and with
/// `patroni_health_check` the HTTP check on Patroni's `/primary` (port 8008) the `members`
/// strategy relies on. Its ARN.
pub async fn create_target_group(
    aws: &AwsClients,
    vpc_id: &str,
    name: &str,
    ip: bool,
    patroni_health_check: bool,
) -> Result<String, MotoError> {
    let mut req = aws
        .elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Tcp)
        .port(5432)
        .vpc_id(vpc_id)
        .target_type(if ip {
            TargetTypeEnum::Ip
        } else {
            TargetTypeEnum::Instance
        });
    if patroni_health_check {
        req = req
            .health_check_protocol(ProtocolEnum::Http)
            .health_check_port("8008")
            .health_check_path("/primary")
            .health_check_interval_seconds(5)
            .health_check_timeout_seconds(2)
            .healthy_threshold_count(2)
            .unhealthy_threshold_count(2);
    }
    let out = req
        .send()
        .await
        .map_err(|e| call_error("CreateTargetGroup", crate::error_chain::one_line(&e)))?;
    out.target_groups()
        .first()
        .and_then(TargetGroup::target_group_arn)
        .map(str::to_string)
        .ok_or_else(|| call_error("CreateTargetGroup", "no ARN in the answer"))
}

/// A private hosted zone `name` in `vpc_id`; its id without the `/hostedzone/` prefix.
pub async fn create_zone(aws: &AwsClients, vpc_id: &str, name: &str) -> Result<String, MotoError> {
    let out = aws
        .route53
        .create_hosted_zone()
        .name(name)
        .caller_reference(unique("ref"))
        .hosted_zone_config(HostedZoneConfig::builder().private_zone(true).build())
        .vpc(
            Vpc::builder()
                .vpc_id(vpc_id)
                .vpc_region(VpcRegion::from(region().as_str()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| call_error("CreateHostedZone", crate::error_chain::one_line(&e)))?;
    let zone = out
        .hosted_zone()
        .ok_or_else(|| call_error("CreateHostedZone", "no zone in the answer"))?;
    Ok(zone.id().trim_start_matches("/hostedzone/").to_string())
}

/// What moto holds: registered targets as `id:port`, sorted.
pub async fn registered(aws: &AwsClients, arn: &str) -> Result<Vec<String>, MotoError> {
    let out = aws
        .elb
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| call_error("DescribeTargetHealth", crate::error_chain::one_line(&e)))?;
    let mut v: Vec<String> = out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target())
        .map(|t| format!("{}:{}", t.id().unwrap_or("?"), t.port().unwrap_or(0)))
        .collect();
    v.sort();
    Ok(v)
}

/// One record set as moto holds it: `(type, set identifier, failover, values)`.
pub type RecordSet = (String, Option<String>, Option<String>, Vec<String>);

/// What moto holds at `name` in `zone`, sorted.
pub async fn records(
    aws: &AwsClients,
    zone: &str,
    name: &str,
) -> Result<Vec<RecordSet>, MotoError> {
    let out = aws
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .map_err(|e| call_error("ListResourceRecordSets", crate::error_chain::one_line(&e)))?;
    let mut v: Vec<RecordSet> = out
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
    Ok(v)
}
