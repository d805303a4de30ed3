//! The HTTP adapter to Patroni's REST API: polls `/patroni` and `/cluster` on every node of a
//! cluster concurrently, each request under a timeout and the whole poll under one deadline.
//! It never follows redirects and never reads more than [`MAX_BODY`] bytes: a node is
//! trusted only for what it says about itself, in the shape Patroni sends.

use std::time::Duration;

use futures_util::future::join_all;

use crate::error_chain::one_line;

use super::{NodeObservation, PollError, parse_cluster, parse_patroni};
use crate::config::{ClusterConfig, NodeConfig, PatroniSettings, TlsSettings};

/// Real answers are a few KiB; anything past this is not Patroni talking.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("cannot build the Patroni HTTP client: {0}")]
pub struct ClientBuildError(String);

#[derive(Clone)]
pub struct PatroniClient {
    http: reqwest::Client,
    settings: PatroniSettings,
}

impl PatroniClient {
    pub fn new(settings: &PatroniSettings) -> Result<PatroniClient, ClientBuildError> {
        let mut builder = reqwest::Client::builder();
        if let Some(tls) = &settings.tls {
            builder = with_tls(builder, tls)?;
        }
        let http = builder
            .connect_timeout(settings.request_timeout)
            .timeout(settings.request_timeout)
            // A redirect is not how Patroni answers; following one could let a node send us elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            // Patroni is reached inside the VPC; an environment proxy must not intercept it.
            .no_proxy()
            .user_agent(concat!("patroni-router/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientBuildError(one_line(&e)))?;
        Ok(PatroniClient {
            http,
            settings: settings.clone(),
        })
    }

    /// Poll every node of `cluster` at once. Always returns one observation per configured
    /// node, in config order; a node not done by the deadline is reported as timed out.
    pub async fn poll(&self, cluster: &ClusterConfig) -> Vec<NodeObservation> {
        let deadline = self.settings.poll_deadline;
        join_all(cluster.nodes.iter().map(|node| async move {
            match tokio::time::timeout(deadline, self.poll_node(node)).await {
                Ok(obs) => obs,
                Err(_) => {
                    let e = PollError::Timeout(format!(
                        "poll deadline of {} passed",
                        humantime::format_duration(deadline)
                    ));
                    NodeObservation {
                        name: node.name.clone(),
                        patroni: Err(e.clone()),
                        cluster: Err(e),
                    }
                }
            }
        }))
        .await
    }

    async fn poll_node(&self, node: &NodeConfig) -> NodeObservation {
        let base = node.api_url.trim_end_matches('/');
        let (patroni_url, cluster_url) = (format!("{base}/patroni"), format!("{base}/cluster"));
        let (patroni, cluster) = tokio::join!(self.get(&patroni_url), self.get(&cluster_url));
        NodeObservation {
            name: node.name.clone(),
            patroni: patroni.and_then(|b| parse_patroni(&b)),
            cluster: cluster.and_then(|b| parse_cluster(&b)),
        }
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, PollError> {
        let timeout = self.settings.request_timeout;
        let mut resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| classify(&e, timeout))?;
        let status = resp.status().as_u16();
        // Patroni answers /patroni with 503 (and a full JSON body) when PostgreSQL is not running.
        if status != 200 && status != 503 {
            return Err(PollError::Status(status));
        }
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(PollError::TooLarge(MAX_BODY));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&e, timeout))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(PollError::TooLarge(MAX_BODY));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn read(path: &std::path::Path, what: &str) -> Result<Vec<u8>, ClientBuildError> {
    std::fs::read(path)
        .map_err(|e| ClientBuildError(format!("patroni.tls.{what} {}: {e}", path.display())))
}

/// A private CA (trusted instead of the system's roots) and an optional client certificate.
fn with_tls(
    mut builder: reqwest::ClientBuilder,
    tls: &TlsSettings,
) -> Result<reqwest::ClientBuilder, ClientBuildError> {
    if let Some(ca) = &tls.ca_file {
        let certs = reqwest::Certificate::from_pem_bundle(&read(ca, "ca_file")?).map_err(|e| {
            ClientBuildError(format!(
                "patroni.tls.ca_file {}: not PEM certificates: {}",
                ca.display(),
                one_line(&e)
            ))
        })?;
        if certs.is_empty() {
            return Err(ClientBuildError(format!(
                "patroni.tls.ca_file {}: no certificate in it",
                ca.display()
            )));
        }
        builder = builder.tls_certs_only(certs);
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        let mut pem = read(cert, "cert_file")?;
        pem.push(b'\n');
        pem.extend(read(key, "key_file")?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            ClientBuildError(format!(
                "patroni.tls.cert_file/key_file: not a PEM certificate and private key: {}",
                one_line(&e)
            ))
        })?;
        builder = builder.identity(identity);
    }
    Ok(builder)
}

fn classify(e: &reqwest::Error, timeout: Duration) -> PollError {
    if e.is_timeout() {
        PollError::Timeout(format!(
            "no answer within {}",
            humantime::format_duration(timeout)
        ))
    } else if e.is_connect() {
        PollError::Connect(one_line(e))
    } else {
        PollError::Other(one_line(e))
    }
}
