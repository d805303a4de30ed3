//! `notify --auth iam`: the request SigV4-signed with this host's AWS role (service `lambda`,
//! for a function URL with `AuthType: AWS_IAM`), never hand-rolled.

use std::time::SystemTime;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::NotifyError;

/// This host's AWS credentials and the region to sign for (the function URL's, else the SDK's).
pub(super) async fn credentials(url: &reqwest::Url) -> Result<(Identity, String), NotifyError> {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let provider = config.credentials_provider().ok_or_else(|| {
        NotifyError::Credentials(
            "no credentials provider (and no ROUTER_WEBHOOK_SECRET for --auth hmac)".into(),
        )
    })?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| NotifyError::Credentials(e.to_string()))?;
    let region = region_of_function_url(url)
        .or_else(|| config.region().map(|r| r.to_string()))
        .ok_or_else(|| {
            NotifyError::Credentials(
                "no region: use a function URL (…lambda-url.REGION.on.aws) or set AWS_REGION"
                    .into(),
            )
        })?;
    Ok((creds.into(), region))
}

/// `https://ID.lambda-url.REGION.on.aws/` -> `REGION`.
pub fn region_of_function_url(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    let mut labels = host.split('.');
    let (_id, kind, region) = (labels.next()?, labels.next()?, labels.next()?);
    (kind == "lambda-url").then(|| region.to_string())
}

/// The SigV4 headers for a function URL request (service `lambda`).
pub(super) fn sigv4_headers(
    identity: &Identity,
    region: &str,
    url: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, NotifyError> {
    let err = |e: &dyn std::fmt::Display| NotifyError::Signing(e.to_string());
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("lambda")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| err(&e))?
        .into();
    let headers = [("content-type", "application/json")];
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| err(&e))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| err(&e))?.into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_url_region_is_read_from_the_host() {
        let u = reqwest::Url::parse("https://abcdefg.lambda-url.eu-west-1.on.aws/").expect("url");
        assert_eq!(region_of_function_url(&u).as_deref(), Some("eu-west-1"));
        let u = reqwest::Url::parse("http://127.0.0.1:9000/").expect("url");
        assert_eq!(region_of_function_url(&u), None);
    }

    #[test]
    fn sigv4_headers_carry_the_lambda_scope() {
        let creds =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let h = sigv4_headers(
            &creds.into(),
            "eu-west-1",
            "https://x.lambda-url.eu-west-1.on.aws/",
            b"{}",
        )
        .expect("signs");
        let auth = h
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/eu-west-1/lambda/aws4_request"), "{auth}");
        assert!(h.iter().any(|(k, _)| k == "x-amz-date"));
    }
}
