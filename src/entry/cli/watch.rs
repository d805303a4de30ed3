//! `watch`: the long-running router of `serve` without the HTTP front door. Each node is polled
//! every `--interval`, each cluster reconciled as soon as the answers move its primary (and
//! every interval at least); a cluster's report is printed when something changed, failed, or
//! its decision moved — quiet in steady state. A signal ends it after the runs in flight; the
//! exit code is 2 if any cluster's last run had errors.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::info;

use crate::domain::report::{ClusterReport, Report};
use crate::engine::{ReconcileError, Router};
use crate::entry::service::scheduler::Trigger;
use crate::entry::service::{self, Hooks};

/// What a cluster's last printed report said: decision kind and primary.
type Summary = (String, Option<String>);

struct Print {
    json: bool,
    last: Mutex<HashMap<String, Summary>>,
    /// Clusters whose last run had errors.
    failing: Mutex<HashMap<String, bool>>,
}

impl Print {
    fn eventful(&self, c: &ClusterReport) -> bool {
        let summary = (
            c.decision.kind().to_string(),
            c.decision.primary().map(str::to_string),
        );
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let moved = last.insert(c.scope.clone(), summary.clone()) != Some(summary);
        moved || !c.errors.is_empty() || !c.changes.is_empty()
    }
}

impl Hooks for Print {
    fn ran(&self, scope: &str, _: &Trigger, result: &Result<Report, ReconcileError>, _: f64) {
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {scope}: {e}");
                return;
            }
        };
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scope.to_string(), !report.ok);
        if !report.clusters.iter().any(|c| self.eventful(c)) {
            return;
        }
        if self.json {
            if let Ok(line) = serde_json::to_string(report) {
                println!("{line}");
            }
        } else {
            print!("{}", report.to_text());
        }
    }
}

pub(super) async fn run(
    router: Router,
    interval: Duration,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let shutdown = super::signals()?;
    let hooks = Arc::new(Print {
        json,
        last: Mutex::new(HashMap::new()),
        failing: Mutex::new(HashMap::new()),
    });
    let (stop, stopped) = watch::channel(false);
    let opts = service::Options {
        interval,
        max_parallel: 4,
    };
    let svc = service::start(router, opts, Arc::clone(&hooks) as Arc<dyn Hooks>, stopped);
    let stopper = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    tokio::join!(svc.tasks, stopper);
    info!("watch stopped by signal");
    let failing = hooks.failing.lock().unwrap_or_else(|p| p.into_inner());
    Ok(if failing.values().any(|f| *f) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
