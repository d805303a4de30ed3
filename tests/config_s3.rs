//! The Lambda's config from S3, against moto's S3: read at start, a new version taken on a
//! later check, a bad version refused with the previous one kept, an unreadable object
//! changing nothing, and a first read that fails saying what to do.

mod common;

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use patroni_router::adapters::sdk::AwsClients;
use patroni_router::config::AwsSettings;
use patroni_router::entry::lambda::reload::{Refreshed, Routers};
use serde_json::json;

const BUCKET: &str = "router-config-test";

fn config(scopes: &[&str]) -> String {
    let clusters: Vec<_> = scopes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"scope": s,
                   "nodes": [{"name": "pg1", "api_url": format!("http://127.0.0.1:{}", 9 + i),
                              "address": format!("10.9.{i}.1")}],
                   "target_group": {"arn": format!(
                       "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/{s}/0123456789abcdef"),
                       "port": 5432}})
        })
        .collect();
    json!({"clusters": clusters}).to_string()
}

/// The test bucket, in the client's region (outside us-east-1 S3 wants it named).
async fn bucket() -> aws_sdk_s3::Client {
    let s3 = AwsClients::s3(&AwsSettings::default()).await;
    let region = s3
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    let mut create = s3.create_bucket().bucket(BUCKET);
    if region != "us-east-1" {
        use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    if let Err(e) = create.send().await {
        let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e)
            .unwrap_or_default()
            .to_string();
        assert!(code.starts_with("BucketAlready"), "create_bucket: {e:?}");
    }
    s3
}

async fn put(s3: &aws_sdk_s3::Client, key: &str, body: String) {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(body.into_bytes()))
        .send()
        .await
        .expect("put_object");
}

fn scopes(r: &Routers) -> Vec<String> {
    r.current()
        .config()
        .clusters
        .iter()
        .map(|c| c.scope.clone())
        .collect()
}

#[tokio::test]
async fn new_versions_are_taken_bad_ones_refused_and_the_previous_kept() {
    let s3 = bucket().await;
    let key = "versions/router.json";
    put(&s3, key, config(&["a"])).await;
    let uri = format!("s3://{BUCKET}/{key}");
    let routers = Routers::from_s3(&uri)
        .await
        .expect("valid config")
        .checking_every(Duration::ZERO);
    assert_eq!(scopes(&routers), ["a"]);
    assert_eq!(routers.refresh().await, Refreshed::Unchanged);

    put(&s3, key, config(&["a", "b"])).await;
    assert!(matches!(routers.refresh().await, Refreshed::Updated { .. }));
    assert_eq!(
        scopes(&routers),
        ["a", "b"],
        "a cluster added without a redeploy"
    );

    put(
        &s3,
        key,
        config(&["a", "b"]).replace("\"port\"", "\"prot\""),
    )
    .await;
    match routers.refresh().await {
        Refreshed::Rejected { reason, .. } => {
            assert!(reason.contains(&uri) && reason.contains("prot"), "{reason}")
        }
        other => panic!("a bad version must be refused: {other:?}"),
    }
    assert_eq!(
        scopes(&routers),
        ["a", "b"],
        "the previous config keeps routing"
    );
    assert_eq!(
        routers.refresh().await,
        Refreshed::Unchanged,
        "a refused version is not read again until it changes"
    );

    s3.delete_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .expect("delete");
    match routers.refresh().await {
        Refreshed::Failed(why) => assert!(why.contains("NoSuchKey"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(scopes(&routers), ["a", "b"]);
}

#[tokio::test]
async fn a_first_read_that_fails_says_what_is_wrong_and_what_to_do() {
    let s3 = bucket().await;
    let missing = format!("s3://{BUCKET}/nothing-here.json");
    let e = Routers::from_s3(&missing).await.err().expect("no object");
    let e = format!("{e:#}");
    assert!(
        e.contains(&missing) && e.contains("NoSuchKey") && e.contains("upload"),
        "{e}"
    );

    put(&s3, "bad.json", "{\"clusters\": []}".into()).await;
    let e = Routers::from_s3(&format!("s3://{BUCKET}/bad.json"))
        .await
        .err()
        .expect("invalid config");
    assert!(format!("{e:#}").contains("no cluster configured"), "{e:#}");

    let e = Routers::from_s3("s3:/typo").await.err().expect("bad URI");
    assert!(format!("{e:#}").contains("s3://BUCKET/KEY"), "{e:#}");
}
