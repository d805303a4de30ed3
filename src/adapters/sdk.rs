//! The AWS SDK's clients, built once per process, and SDK errors shaped for humans.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;

use super::AwsError;
use crate::config::AwsSettings;

/// An [`AwsError`] from any SDK error: keeps AWS's code and message, falls back to the
/// readable error chain.
pub fn from_sdk<E>(operation: &'static str, resource: &str, err: &E) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = match err.message() {
        Some(m) => match err.code() {
            Some(c) => format!("{c}: {m}"),
            None => m.to_string(),
        },
        None => crate::error_chain::one_line(err),
    };
    AwsError::new(operation, resource, err.code(), message)
}

/// The SDK clients, built once per process (Lambda: once per cold start).
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub route53: aws_sdk_route53::Client,
}

impl AwsClients {
    /// Standard credential and region chain; `settings.endpoint_url`, else `AWS_ENDPOINT_URL`
    /// (e.g. moto), else the public endpoints.
    pub async fn new(settings: &AwsSettings) -> AwsClients {
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
        let shared = loader.load().await;
        AwsClients {
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&shared),
            route53: aws_sdk_route53::Client::new(&shared),
        }
    }
}
