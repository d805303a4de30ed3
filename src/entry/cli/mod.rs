//! The command-line entry point: `plan`, `reconcile`, `status` (one run), `watch` (the
//! long-running router, printing what changes), `serve` (the same behind HTTP: webhook,
//! metrics, probes) and `notify` (the webhook sender). Reports go to stdout, logs to stderr.
//!
//! Exit codes: 0 done (including fail-static decisions: they are the router doing its job),
//! 1 usage or configuration error (nothing was touched), 2 the run finished with errors (an AWS
//! call failed, a change was blocked).

mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::error::ErrorKind;
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
use crate::error_chain::one_line;
use crate::webhook::Auth;

#[derive(Parser, Debug)]
#[command(
    name = "patroni-router",
    version,
    about = "Route AWS NLB target groups and Route 53 records to the Patroni primary"
)]
struct Cli {
    /// Log format on stderr (text, without colours unless stderr is a terminal; json for log
    /// pipelines).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// More logs: -v info, -vv debug (default: warnings; `watch` and `serve` log at info).
    /// RUST_LOG overrides.
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
    /// Route continuously until Ctrl-C / SIGTERM: every node polled every --interval, a
    /// reconcile as soon as the answers move the primary, and every --interval at least;
    /// prints a report when something changed or failed.
    Watch {
        #[command(flatten)]
        run: RunArgs,
        /// How often each node is polled, and the longest between reconciles, e.g. 1s, 500ms.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        interval: Duration,
    },
    /// Members, roles, states, timelines, lag, and where routing points (read-only).
    Status(RunArgs),
    /// Preflight for a deployment (read-only): ask every Patroni node, make one read call to
    /// each AWS API the router uses and to each target group and hosted zone; one line per
    /// dependency, with the likely fix of what failed. Exit 2 when anything failed.
    Check(RunArgs),
    /// Run as a service: POST /webhook (the signed Patroni callback), the router of `watch`,
    /// GET /metrics (Prometheus), GET /healthz and /readyz. SIGTERM / Ctrl-C: stop accepting,
    /// finish the runs in flight, exit 0. The webhook secret comes from
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
    /// The report's format on stdout: text for people, json for programs.
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
    /// How often each node is polled, and the longest between reconciles, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    interval: Duration,
    /// How many clusters are reconciled at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    max_parallel: u16,
    /// /readyz answers 503 once AWS has been unreachable for this many intervals.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    ready_after: u32,
    /// The most HTTP connections open at once (lowered to fit the open-files limit, keeping
    /// 256 descriptors for polling Patroni and calling AWS).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(16..))]
    max_connections: u32,
    /// A client must send its request headers within this, and may idle no longer between
    /// requests on a kept-alive connection.
    #[arg(long, default_value = "5s", value_parser = parse_header_timeout)]
    header_timeout: Duration,
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
    if d > Duration::from_secs(3600) {
        return Err("an interval over 1h leaves a failover unrouted that long: use e.g. 5s".into());
    }
    Ok(d)
}

/// `--header-timeout`: a positive duration of at most a minute.
fn parse_header_timeout(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 5s)"))?;
    if d.is_zero() || d > Duration::from_secs(60) {
        return Err("give a duration from 1ms to 60s (default 5s)".into());
    }
    Ok(d)
}

/// Parse the command line; help and version exit 0, any usage error exits 1 (as documented).
fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        let code = match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
            _ => ExitCode::from(1),
        };
        let _ = e.print();
        code
    })
}

pub async fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let level = match cli.verbose {
        0 if matches!(cli.command, Command::Watch { .. } | Command::Serve(_)) => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    logging::init(cli.log_format, level);
    crate::files::raise_limit();
    match run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(e.as_ref()));
            ExitCode::from(1)
        }
    }
}

async fn load_config(
    path: Option<&std::path::Path>,
    scope: Option<&str>,
) -> anyhow::Result<Config> {
    let mut config = match path {
        Some(path) => Config::from_file(path)?,
        None => Config::from_env()?,
    };
    if let Some(shard) = crate::config::Shard::from_env()? {
        config = config.only_shard(shard)?;
    }
    if let Some(scope) = scope {
        if config.cluster(scope).is_none() {
            anyhow::bail!("--scope {scope:?} is not a cluster in the config");
        }
        config.clusters.retain(|c| c.scope == scope);
    }
    Ok(config)
}

async fn router(config: Config) -> anyhow::Result<Router> {
    let aws = AwsClients::new(&config.aws).await;
    Router::new(config, aws).context("starting the router")
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Plan(args) => once(&args, Mode::Plan, false).await,
        Command::Reconcile(args) => once(&args, Mode::Reconcile, false).await,
        Command::Status(args) => once(&args, Mode::Plan, true).await,
        Command::Check(args) => check(&args).await,
        Command::Watch { run, interval } => {
            let config = load_config(run.config.as_deref(), run.scope.as_deref()).await?;
            watch::run(router(config).await?, interval, run.output == Output::Json).await
        }
        Command::Serve(args) => serve(&args).await,
        Command::Notify(opts) => match notify::run(&opts).await {
            Ok(notify::Outcome::Sent(status)) => {
                eprintln!("notified {}: HTTP {status}", opts.url);
                Ok(ExitCode::SUCCESS)
            }
            Ok(notify::Outcome::Printed) => Ok(ExitCode::SUCCESS),
            Err(e) => {
                eprintln!("notify failed: {}", one_line(&e));
                Ok(ExitCode::from(1))
            }
        },
    }
}

async fn once(args: &RunArgs, mode: Mode, status: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(args.config.as_deref(), args.scope.as_deref()).await?;
    let report = router(config).await?.run(mode, None).await?;
    print_report(&report, args.output, status)?;
    Ok(exit_code(&report))
}

async fn check(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(args.config.as_deref(), args.scope.as_deref()).await?;
    let report = router(config).await?.check().await;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => print!("{}", report.to_text()),
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
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

/// SIGTERM or SIGINT.
fn signals() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM"),
            _ = int.recv() => info!("SIGINT"),
        }
    })
}

/// The service, until SIGTERM or SIGINT; exit 0 once the runs in flight are done.
async fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let auth = Auth::from_env().context("webhook auth")?;
    let config = load_config(args.config.as_deref(), None).await?;
    let router = router(config).await?;
    let opts = serve::Options {
        listen: args.listen,
        interval: args.interval,
        max_parallel: usize::from(args.max_parallel),
        ready_after: args.ready_after,
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        header_read_timeout: args.header_timeout,
    };
    serve::run(router, auth, &opts, signals()?).await?;
    Ok(ExitCode::SUCCESS)
}
