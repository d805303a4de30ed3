//! The Lambda's config from S3 (`ROUTER_CONFIG_S3`): read at start, then checked again at most
//! every [`CHECK_EVERY`] on scheduled and direct invocations (never on the webhook's path) with
//! a conditional GET. A new version is validated like a file; a bad one is refused — the
//! previous config keeps routing — logged with the field and the fix, and counted as the
//! `ConfigRejected` metric (alarmed in the template and the Terraform module).

use std::io::Write as _;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tracing::{error, info};

use crate::adapters::config_s3::{self, Fetched, S3Location};
use crate::adapters::sdk::AwsClients;
use crate::config::{AwsSettings, Config, Shard};
use crate::engine::Router;

/// How often a warm function looks for a new config version.
const CHECK_EVERY: Duration = Duration::from_secs(30);

/// The router of the current config, and where the config comes from.
pub struct Routers {
    current: RwLock<Arc<Router>>,
    source: Option<Source>,
    check_every: Duration,
}

/// What a [`Routers::refresh`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    /// Not S3, or not time yet.
    NotChecked,
    Unchanged,
    /// A new version is in use.
    Updated {
        version: String,
    },
    /// A new version was refused; the current config keeps routing.
    Rejected {
        version: String,
        reason: String,
    },
    /// S3 could not be read; the current config keeps routing.
    Failed(String),
}

struct Source {
    s3: aws_sdk_s3::Client,
    at: S3Location,
    /// The ETag of the version in use, and when S3 was last asked.
    seen: Mutex<(Option<String>, Instant)>,
}

/// The router of `config` (this shard's part of it, with `ROUTER_SHARD`).
fn router(config: Config, aws: AwsClients) -> anyhow::Result<Router> {
    let config = match Shard::from_env()? {
        Some(shard) => config.only_shard(shard)?,
        None => config,
    };
    Ok(Router::new(config, aws)?.with_change_driven_reads())
}

impl Routers {
    /// The config from `ROUTER_CONFIG_S3` when set, else from `ROUTER_CONFIG(_FILE)`.
    pub async fn from_env() -> anyhow::Result<Routers> {
        let Ok(uri) = std::env::var(crate::config::ENV_CONFIG_S3) else {
            let config = Config::from_env()?;
            let aws = AwsClients::new(&config.aws).await;
            return Ok(Routers {
                current: RwLock::new(Arc::new(router(config, aws)?)),
                source: None,
                check_every: CHECK_EVERY,
            });
        };
        Routers::from_s3(&uri).await
    }

    /// The config from the S3 object at `uri` (`s3://bucket/key`).
    pub async fn from_s3(uri: &str) -> anyhow::Result<Routers> {
        let at = S3Location::parse(uri)?;
        let s3 = AwsClients::s3(&AwsSettings::default()).await;
        let Fetched::Changed { text, etag, .. } = config_s3::fetch(&s3, &at, None).await? else {
            anyhow::bail!("{at}: S3 answered 'not modified' to an unconditional read");
        };
        let config = Config::from_json(&text, &at.to_string())?;
        let aws = AwsClients::new(&config.aws).await;
        Ok(Routers {
            current: RwLock::new(Arc::new(router(config, aws)?)),
            source: Some(Source {
                s3,
                at,
                seen: Mutex::new((etag, Instant::now())),
            }),
            check_every: CHECK_EVERY,
        })
    }

    /// Look for new versions this often instead (tests).
    pub fn checking_every(mut self, every: Duration) -> Routers {
        self.check_every = every;
        self
    }

    pub fn current(&self) -> Arc<Router> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Look for a new config version if it is time; switch to it when it is valid. A failed
    /// read or a bad version keeps the current router.
    pub async fn refresh(&self) -> Refreshed {
        let Some(src) = &self.source else {
            return Refreshed::NotChecked;
        };
        let etag = {
            let mut seen = src.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.1.elapsed() < self.check_every {
                return Refreshed::NotChecked;
            }
            seen.1 = Instant::now();
            seen.0.clone()
        };
        let (text, etag, version) = match config_s3::fetch(&src.s3, &src.at, etag.as_deref()).await
        {
            Ok(Fetched::Unchanged) => return Refreshed::Unchanged,
            Ok(Fetched::Changed {
                text,
                etag,
                version,
            }) => (text, etag, version),
            Err(e) => {
                error!(error = %e, "config check failed: the current config keeps routing");
                return Refreshed::Failed(e.to_string());
            }
        };
        let version = version.or(etag.clone()).unwrap_or_else(|| "?".into());
        let outcome = self.switch(&src.at, &text, &version).await;
        // A rejected version is not read again until it changes.
        src.seen.lock().unwrap_or_else(|p| p.into_inner()).0 = etag;
        outcome
    }

    /// Validate `text` and use it, or refuse it.
    async fn switch(&self, at: &S3Location, text: &str, version: &str) -> Refreshed {
        let built = match Config::from_json(text, &format!("{at} (version {version})")) {
            Ok(config) => {
                let aws = AwsClients::new(&config.aws).await;
                router(config, aws).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match built {
            Ok(r) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(r);
                info!(config = %at, version, "new config version in use");
                Refreshed::Updated {
                    version: version.to_string(),
                }
            }
            Err(reason) => {
                rejected(at, version, &reason);
                Refreshed::Rejected {
                    version: version.to_string(),
                    reason,
                }
            }
        }
    }
}

/// A bad config version: logged, counted; the current config keeps routing.
fn rejected(at: &S3Location, version: &str, why: &str) {
    error!(config = %at, version, error = why, "config version rejected: the previous config keeps routing; fix the object and upload it again");
    let metrics = crate::domain::emf::config_metrics(1);
    let namespace = crate::domain::emf::namespace_from_env();
    let line =
        crate::domain::emf::process_document(&namespace, &metrics, crate::clock::unix_now_ms());
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
