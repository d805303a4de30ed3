//! The AWS SDK's clients, built once per process, and SDK errors shaped for humans.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;

use super::AwsError;
use super::budget::Budget;
use crate::config::AwsSettings;

/// An [`AwsError`] from any SDK error: AWS's code and message when AWS answered; else (the
/// call never reached AWS) one short sentence on what is missing and what to do, not the
/// SDK's debug structures.
pub fn from_sdk<E>(operation: &'static str, resource: &str, err: &E) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = match err.message() {
        Some(m) => match err.code() {
            Some(c) => format!("{c}: {m}"),
            None => m.to_string(),
        },
        None => unanswered(&crate::error_chain::one_line(err)),
    };
    AwsError::new(operation, resource, err.code(), message)
}

/// Why a call got no answer from AWS, and the fix, from the error chain's text.
fn unanswered(chain: &str) -> String {
    let lower = chain.to_ascii_lowercase();
    let cause = short(chain);
    if lower.contains("credential") || lower.contains("failedtoloadtoken") {
        format!(
            "no usable AWS credentials ({cause}): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or run with an instance, task or Lambda role"
        )
    } else if lower.contains("region") {
        format!("no AWS region ({cause}): set AWS_REGION, or a region in the AWS profile")
    } else {
        format!(
            "AWS did not answer ({cause}): check the network path to the ELBv2 and Route 53 \
             APIs (NAT gateway or VPC endpoints), and `aws.endpoint_url` if set"
        )
    }
}

/// The innermost readable part of an error chain, without debug structures, at most ~160
/// characters.
fn short(chain: &str) -> String {
    // Debug structures: braces, or a type name right before a parenthesis (`Error(`).
    let debug = |p: &str| {
        p.contains('{')
            || p.as_bytes()
                .windows(2)
                .any(|w| w[0].is_ascii_alphabetic() && w[1] == b'(')
    };
    let readable: Vec<&str> = chain
        .split(": ")
        .filter(|p| !p.is_empty() && !debug(p))
        .collect();
    let last = readable.last().copied().unwrap_or(chain);
    let mut s: String = last.chars().take(160).collect();
    if s.len() < last.len() {
        s.push('…');
    }
    s
}

/// The SDK's config loader: the standard credential and region chain, retries and timeouts
/// from `settings`, `settings.endpoint_url` if set.
fn loader(settings: &AwsSettings) -> aws_config::ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        // Standard retry mode backs off with jitter on Throttling, PriorRequestNotComplete, 5xx.
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3).min(settings.attempt_timeout))
                .operation_attempt_timeout(settings.attempt_timeout)
                .operation_timeout(
                    settings.attempt_timeout * settings.max_attempts + Duration::from_secs(5),
                )
                .build(),
        );
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader
}

/// The SDK clients, built once per process (Lambda: once per cold start), and the process's
/// AWS budget, which every request of both waits for.
#[derive(Clone)]
pub struct AwsClients {
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub route53: aws_sdk_route53::Client,
    pub budget: Arc<Budget>,
}

impl AwsClients {
    /// An S3 client (the Lambda's config source), with the same settings.
    pub async fn s3(settings: &AwsSettings) -> aws_sdk_s3::Client {
        let shared = loader(settings).load().await;
        // Path-style addressing works with every endpoint (AWS and emulators alike).
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(
                settings.endpoint_url.is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            )
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// Standard credential and region chain; `settings.endpoint_url`, else `AWS_ENDPOINT_URL`
    /// (e.g. moto), else the public endpoints.
    pub async fn new(settings: &AwsSettings) -> AwsClients {
        let shared = loader(settings).load().await;
        AwsClients {
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&shared),
            route53: aws_sdk_route53::Client::new(&shared),
            budget: Arc::new(Budget::new(&settings.budget)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_that_never_reached_aws_say_what_is_missing_in_one_short_sentence() {
        let creds = "dispatch failure: other: the credential provider was not enabled: no \
                     providers in chain provided credentials";
        let m = unanswered(creds);
        assert!(
            m.starts_with("no usable AWS credentials") && m.contains("AWS_PROFILE"),
            "{m}"
        );
        let imds = format!(
            "dispatch failure: other: FailedToLoadToken(FailedToLoadToken {{ source: \
             ResponseError {{ raw: Response {{ status: StatusCode(403), headers: {} }} }} }})",
            "x".repeat(900)
        );
        let m = unanswered(&imds);
        assert!(m.len() < 400, "{} characters: {m}", m.len());
        assert!(!m.contains("StatusCode"), "{m}");
        let m = unanswered("dispatch failure: other: missing signing region");
        assert!(
            m.starts_with("no AWS region") && m.contains("AWS_REGION"),
            "{m}"
        );
        let m = unanswered(
            "dispatch failure: io error: error trying to connect: Connection refused (os error 111)",
        );
        assert!(
            m.contains("Connection refused") && m.contains("NAT gateway"),
            "{m}"
        );
    }
}
