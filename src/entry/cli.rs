//! The command-line entry point: `plan`, `reconcile`, `watch`, `status`, each a thin wrapper
//! over `Router::run`, `serve`, the long-running service (webhook, watch loop, metrics), and
//! `notify`, the webhook sender. Reports go to stdout, logs to stderr.
//!
//! Exit codes: 0 done (including fail-static decisions: they are the router doing its job),
//! 1 usage or configuration error, 2 the run finished with errors (an AWS call failed, a change
//! was blocked).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use crate::adapters::sdk::AwsClients;
use crate::config::Config;
use crate::domain::report::{Mode, Report};
use crate::engine::Router;
use crate::entry::logging::{self, LogFormat};
use crate::entry::notify;
use crate::entry::serve;
use crate::webhook::Auth;

#[derive(Parser, Debug)]
#[command(
    name = "patroni-router",
    version,
    about = "Route AWS NLB target groups and Route 53 records to the Patroni primary"
)]
struct Cli {
    /// Log format on stderr (text on a terminal, json for log pipelines).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// More logs (-v: info, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read-only: the decision per cluster and the changes a reconcile would make.
    Plan(RunArgs),
    /// Apply the changes and print what was done.
    Reconcile(RunArgs),
    /// Reconcile in a loop until Ctrl-C / SIGTERM (the run in flight finishes first).
    Watch {
        #[command(flatten)]
        run: RunArgs,
        /// Time between runs, e.g. 1s, 500ms, 1m.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        interval: Duration,
    },
    /// Members, roles, states, timelines, lag, and where routing points (read-only).
    Status(RunArgs),
    /// Run as a service: POST /webhook (the signed Patroni callback), a watch loop per
    /// cluster, GET /metrics (Prometheus), GET /healthz and /readyz. SIGTERM / Ctrl-C: stop
    /// accepting, finish the runs in flight, exit 0. The webhook secret comes from
    /// $ROUTER_WEBHOOK_SECRET or $ROUTER_WEBHOOK_SECRET_FILE.
    Serve(ServeArgs),
    /// Send a signed Patroni callback to the router's webhook. Use it as a Patroni callback:
    /// Patroni appends ACTION ROLE SCOPE. The secret comes from $ROUTER_WEBHOOK_SECRET or
    /// $ROUTER_WEBHOOK_SECRET_FILE, never from the command line.
    Notify(notify::Options),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Config file (JSON). Without it: $ROUTER_CONFIG (inline JSON) or $ROUTER_CONFIG_FILE.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Only this cluster (its Patroni scope).
    #[arg(long)]
    scope: Option<String>,
    #[arg(long, short, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Config file (JSON). Without it: $ROUTER_CONFIG (inline JSON) or $ROUTER_CONFIG_FILE.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address to listen on (HTTP), e.g. 127.0.0.1:8080 or 0.0.0.0:8080.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The watch loop: each cluster is reconciled this long after its last run, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    interval: Duration,
    /// How many clusters are reconciled at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    max_parallel: u16,
    /// /readyz answers 503 once a cluster's last successful reconcile is older than this many
    /// intervals.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    ready_after: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 1s, 500ms)"))?;
    if d < Duration::from_millis(100) {
        return Err("an interval under 100ms would hammer Patroni and AWS".into());
    }
    Ok(d)
}

pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 if matches!(cli.command, Command::Watch { .. } | Command::Serve(_)) => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    logging::init(cli.log_format, level);
    match run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn router(args: &RunArgs) -> anyhow::Result<Router> {
    load_router(args.config.as_deref(), args.scope.as_deref()).await
}

async fn load_router(
    config: Option<&std::path::Path>,
    scope: Option<&str>,
) -> anyhow::Result<Router> {
    let config = match config {
        Some(path) => Config::from_file(path)?,
        None => Config::from_env()?,
    };
    if let Some(scope) = scope
        && config.cluster(scope).is_none()
    {
        anyhow::bail!("--scope {scope:?} is not a cluster in the config");
    }
    let aws = AwsClients::new(&config.aws).await;
    Router::new(config, aws).context("starting the router")
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Plan(args) => once(&args, Mode::Plan, false).await,
        Command::Reconcile(args) => once(&args, Mode::Reconcile, false).await,
        Command::Status(args) => once(&args, Mode::Plan, true).await,
        Command::Watch { run, interval } => watch(&run, interval).await,
        Command::Serve(args) => serve(&args).await,
        Command::Notify(opts) => match notify::send(&opts).await {
            Ok(status) => {
                eprintln!("notified {}: HTTP {status}", opts.url);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("notify failed: {e}");
                Ok(ExitCode::from(1))
            }
        },
    }
}

async fn once(args: &RunArgs, mode: Mode, status: bool) -> anyhow::Result<ExitCode> {
    let router = router(args).await?;
    let report = router.run(mode, args.scope.as_deref()).await?;
    print_report(&report, args.output, status)?;
    Ok(exit_code(&report))
}

fn print_report(report: &Report, output: Output, status: bool) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(report)?),
        Output::Text if status => print!("{}", report.to_status_table()),
        Output::Text => print!("{}", report.to_text()),
    }
    Ok(())
}

fn exit_code(report: &Report) -> ExitCode {
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// The service, until SIGTERM or SIGINT; exit 0 once the runs in flight are done.
async fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let auth = Auth::from_env().context("webhook auth")?;
    let router = load_router(args.config.as_deref(), None).await?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM"),
            _ = int.recv() => info!("SIGINT"),
        }
    };
    let opts = serve::Options {
        listen: args.listen,
        interval: args.interval,
        max_parallel: usize::from(args.max_parallel),
        ready_after: args.ready_after,
    };
    serve::run(router, auth, &opts, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// Reconcile every `interval`. Prints a report when something changed, failed, or the
/// decision moved; stays quiet in steady state. Signals end the loop between runs.
async fn watch(args: &RunArgs, interval: Duration) -> anyhow::Result<ExitCode> {
    let router = router(args).await?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut last: Vec<(String, String, Option<String>)> = Vec::new();
    let mut ok;
    loop {
        let report = router.run(Mode::Reconcile, args.scope.as_deref()).await?;
        let summary: Vec<_> = report
            .clusters
            .iter()
            .map(|c| {
                (
                    c.scope.clone(),
                    c.decision.kind().to_string(),
                    c.decision.primary().map(str::to_string),
                )
            })
            .collect();
        let eventful =
            summary != last || !report.ok || report.clusters.iter().any(|c| !c.changes.is_empty());
        if eventful {
            match args.output {
                Output::Json => println!("{}", serde_json::to_string(&report)?),
                Output::Text => print!("{}", report.to_text()),
            }
        }
        ok = report.ok;
        last = summary;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    info!("watch stopped by signal");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
