//! The AWS adapters: read the routing AWS holds into plain `plan` types, and apply a plan.
//! One module per service; this one builds the clients and shapes errors for humans.

pub mod elb;
pub mod route53;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;

use crate::config::AwsSettings;

/// A failed AWS call: which call, on which resource, what AWS said, and what to do.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{operation} on {resource} failed: {message}{hint}")]
pub struct AwsError {
    pub operation: &'static str,
    pub resource: String,
    /// AWS's error code when there is one (`AccessDenied`, `TargetGroupNotFound`, ...).
    pub code: Option<String>,
    pub message: String,
    hint: String,
}

impl AwsError {
    pub fn new(
        operation: &'static str,
        resource: &str,
        code: Option<&str>,
        message: String,
    ) -> Self {
        let hint = match code {
            Some(c) if c.contains("AccessDenied") || c.contains("UnauthorizedOperation") => {
                format!(" (grant the router's role {operation} on this resource)")
            }
            Some("TargetGroupNotFound") => " (check `target_group.arn` and the region)".into(),
            Some("NoSuchHostedZone") => " (check `dns.hosted_zone_id`)".into(),
            Some("Throttling" | "ThrottlingException" | "PriorRequestNotComplete") => {
                " (AWS throttled the call after retries; the next run retries)".into()
            }
            _ => String::new(),
        };
        AwsError {
            operation,
            resource: resource.to_string(),
            code: code.map(str::to_string),
            message,
            hint,
        }
    }

    /// From any SDK error: keeps AWS's code and message, falls back to the full error chain.
    pub fn from_sdk<E>(operation: &'static str, resource: &str, err: &E) -> Self
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
