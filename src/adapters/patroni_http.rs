//! Patroni's REST API over HTTP(S): the [`Patroni`] port. Asks one node `/patroni` and
//! `/cluster` at once, each request under `request_timeout`. It never follows redirects and
//! never reads more than [`MAX_BODY`] bytes: a node is trusted only for what it says about
//! itself, in the shape Patroni sends.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use super::Patroni;
use crate::config::{NodeConfig, PatroniSettings, TlsSettings};
use crate::domain::patroni::{
    NodeObservation, PollError, Switch, parse_cluster, parse_history, parse_patroni,
};
use crate::error_chain::one_line;

/// Real answers are a few KiB; anything past this is not Patroni talking.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("cannot build the Patroni HTTP client: {0}")]
pub struct ClientBuildError(String);

#[derive(Clone)]
pub struct HttpPatroni {
    http: reqwest::Client,
    request_timeout: Duration,
    /// Requests in flight, all nodes together (each holds a connection: a file descriptor).
    in_flight: Arc<Semaphore>,
    most_in_flight: usize,
}

impl HttpPatroni {
    pub fn new(settings: &PatroniSettings) -> Result<HttpPatroni, ClientBuildError> {
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
            // Thousands of nodes, each asked once an interval: an idle connection per node
            // would hold a descriptor each for nothing.
            .pool_idle_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(2)
            .build()
            .map_err(|e| ClientBuildError(one_line(&e)))?;
        let in_flight = settings.max_in_flight.unwrap_or_else(crate::files::share);
        Ok(HttpPatroni {
            http,
            request_timeout: settings.request_timeout,
            in_flight: Arc::new(Semaphore::new(in_flight)),
            most_in_flight: in_flight,
        })
    }

    /// One GET, once a slot is free; the wait for the slot counts against the timeout.
    async fn get(&self, url: &str) -> Result<Vec<u8>, PollError> {
        let timeout = self.request_timeout;
        let waited = tokio::time::timeout(timeout, self.in_flight.acquire()).await;
        let Ok(Ok(_slot)) = waited else {
            return Err(PollError::Timeout(format!(
                "no request slot within {}: {} requests to Patroni were already in flight \
                 (raise patroni.max_in_flight or the open-files limit)",
                humantime::format_duration(timeout),
                self.most_in_flight
            )));
        };
        self.send(url, timeout).await
    }

    async fn send(&self, url: &str, timeout: Duration) -> Result<Vec<u8>, PollError> {
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

#[async_trait]
impl Patroni for HttpPatroni {
    async fn observe(&self, node: &NodeConfig) -> NodeObservation {
        let base = node.api_url.trim_end_matches('/');
        let (patroni_url, cluster_url) = (format!("{base}/patroni"), format!("{base}/cluster"));
        let (patroni, cluster) = tokio::join!(self.get(&patroni_url), self.get(&cluster_url));
        NodeObservation {
            name: node.name.clone(),
            patroni: patroni.and_then(|b| parse_patroni(&b)),
            cluster: cluster.and_then(|b| parse_cluster(&b)),
        }
    }

    async fn history(&self, node: &NodeConfig) -> Result<Vec<Switch>, PollError> {
        let base = node.api_url.trim_end_matches('/');
        parse_history(&self.get(&format!("{base}/history")).await?)
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

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn classify(e: &reqwest::Error, timeout: Duration) -> PollError {
    if e.is_timeout() {
        PollError::Timeout(format!(
            "no answer within {}",
            humantime::format_duration(timeout)
        ))
    } else if e.is_connect() {
        // The innermost cause says it: "Connection refused (os error 111)", "certificate…".
        PollError::Connect(root_cause(e))
    } else {
        PollError::Other(one_line(e))
    }
}
