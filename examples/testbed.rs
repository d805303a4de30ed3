//! The testbed (a test tool, not the product): fake Patroni clusters and their AWS side in moto.
//! The fake and the moto setup live in the library's testkit (`testkit::testbed`,
//! `testkit::world`); this is only their command line.
//!
//! `serve`: N clusters x pg1..pg3, each node on its own loopback address and port as real hosts
//! are (127.1.0.1, 127.1.0.2, ... port 8008), pg1 leading on timeline 1, and an HTTP control
//! port (failover, hang/close/down/up a node: see `src/testkit/testbed/control.rs`). With
//! `--moto-config FILE` it also creates the moto world for them and writes the router config.
//! `--ready-file FILE` gets `{"control": URL, "clusters": N}` once everything listens.
//!
//! `moto`: the moto world and router config for the clusters a running testbed serves
//! (`--control URL`, optionally only the first `--clusters N`), or for real nodes
//! (`--node pg1=http://127.0.0.1:8008 ... --scope pgha`: `make demo`, `make bench-lag`).
//!
//!   cargo run --example testbed -- serve --clusters 1000 --ready-file /tmp/testbed.json
//!   cargo run --example testbed -- moto --control http://127.0.0.1:PORT --ip-targets --zones 4 --out router.json

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser};
use patroni_router::testkit::moto;
use patroni_router::testkit::testbed::{Layout, MEMBERS, Testbed, serve_control};
use patroni_router::testkit::world::{self, ClusterNodes, WorldOptions};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "Fake Patroni clusters on loopback, and their AWS side in moto (a test tool)")]
enum Cmd {
    /// Serve N fake clusters (and optionally create their moto world and router config).
    Serve(ServeArgs),
    /// Create the moto world and the router config for a running testbed's clusters or given nodes.
    Moto(MotoArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// How many clusters (each pg1..pg3).
    #[arg(long, default_value_t = 1)]
    clusters: usize,
    /// The scope of a lone cluster; with several: SCOPE0, SCOPE1, ...
    #[arg(long, default_value = "pgha")]
    scope: String,
    /// The first node's address; the next nodes take the next addresses (127.0.0.0/8 only).
    #[arg(long, default_value = "127.1.0.1")]
    first_address: Ipv4Addr,
    /// Every node's port (Patroni's 8008; 0: any free port per node).
    #[arg(long, default_value_t = 8008)]
    port: u16,
    /// The control interface's address.
    #[arg(long, default_value = "127.0.0.1:0")]
    control: std::net::SocketAddr,
    /// Written once everything listens: {"control": URL, "clusters": N}.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Create the moto world for every cluster and write the router config here.
    #[arg(long)]
    moto_config: Option<PathBuf>,
    #[command(flatten)]
    world: WorldArgs,
}

#[derive(Args)]
struct MotoArgs {
    /// Where to write the router config.
    #[arg(long)]
    out: PathBuf,
    /// A running testbed's control URL: route its clusters.
    #[arg(long, conflicts_with = "node")]
    control: Option<String>,
    /// With --control: only its first N clusters.
    #[arg(long, requires = "control")]
    clusters: Option<usize>,
    /// A real node, NAME=API_URL (repeat per node); they form one cluster, --scope.
    #[arg(long, value_parser = parse_node)]
    node: Vec<(String, String)>,
    /// The scope of the --node cluster.
    #[arg(long, default_value = "pgha")]
    scope: String,
    #[command(flatten)]
    world: WorldArgs,
}

#[derive(Args)]
struct WorldArgs {
    /// ip targets on made-up addresses (no EC2; for thousands of clusters) instead of instances.
    #[arg(long)]
    ip_targets: bool,
    /// Private hosted zones the records spread over.
    #[arg(long, default_value_t = 1)]
    zones: usize,
    /// The zones' domain.
    #[arg(long, default_value = "example.internal.")]
    domain: String,
    /// Target groups are PREFIX-0, PREFIX-1, ... (default: a fresh unique prefix).
    #[arg(long)]
    prefix: Option<String>,
    /// The target groups' strategy: primary-only or members.
    #[arg(long, default_value = "primary-only")]
    strategy: String,
    /// The records' routing: simple or failover.
    #[arg(long, default_value = "simple")]
    routing: String,
    /// JSON merged into the config's top level, e.g. '{"webhook": {"confirm_timeout": "3s"}}'.
    #[arg(long, value_parser = parse_json)]
    extra: Option<Value>,
}

fn parse_node(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(n, u)| (n.to_string(), u.to_string()))
        .ok_or_else(|| format!("{s:?}: expected NAME=API_URL"))
}

fn parse_json(s: &str) -> Result<Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))
}

impl WorldArgs {
    fn options(&self) -> WorldOptions {
        let mut o = WorldOptions {
            ip_targets: self.ip_targets,
            zones: self.zones,
            domain: self.domain.clone(),
            strategy: self.strategy.clone(),
            routing: self.routing.clone(),
            extra: self.extra.clone().unwrap_or_else(|| json!({})),
            ..WorldOptions::default()
        };
        if let Some(p) = &self.prefix {
            o.prefix = p.clone();
        }
        o
    }

    /// Create the world for `clusters` and write the router config to `out`.
    async fn write_config(&self, clusters: &[ClusterNodes], out: &Path) -> anyhow::Result<()> {
        let aws = moto::clients().await?;
        let config = world::create(&aws, clusters, &self.options()).await?;
        write_atomically(out, &serde_json::to_string_pretty(&config)?)
    }
}

/// Write through a temporary file and a rename, so a poller never reads half a file.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Raise the soft RLIMIT_NOFILE to the hard limit (and the hard limit to `need` where we may,
/// as root); fail with what to do when `need` descriptors still do not fit.
fn raise_nofile(need: u64, clusters: usize) -> anyhow::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read or write only the struct passed, which we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            bail!(
                "getrlimit(RLIMIT_NOFILE): {}",
                std::io::Error::last_os_error()
            );
        }
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max.max(need),
            rlim_max: lim.rlim_max.max(need),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            let soft_to_hard = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &soft_to_hard);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    if lim.rlim_cur < need {
        bail!(
            "{clusters} clusters need {need} file descriptors ({} listeners and room for \
             connections), but RLIMIT_NOFILE allows {} (hard limit {}): raise the hard limit \
             (`ulimit -Hn {need}` as root, LimitNOFILE= in a unit, /etc/security/limits.conf) \
             or serve fewer clusters",
            clusters * MEMBERS.len(),
            lim.rlim_cur,
            lim.rlim_max
        );
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listeners = args.clusters * MEMBERS.len();
    raise_nofile(listeners as u64 + 2048, args.clusters)?;
    let layout = Layout {
        clusters: args.clusters,
        scope: args.scope.clone(),
        first_address: args.first_address,
        port: args.port,
    };
    let tb = Arc::new(Testbed::start(&layout).await?);
    let control = tokio::net::TcpListener::bind(args.control)
        .await
        .with_context(|| format!("control port {}", args.control))?;
    let control_url = format!("http://{}", control.local_addr()?);
    if let Some(out) = &args.moto_config {
        args.world.write_config(&tb.cluster_nodes(), out).await?;
    }
    let server = tokio::spawn(serve_control(Arc::clone(&tb), control));
    if let Some(ready) = &args.ready_file {
        let info = json!({"control": control_url, "clusters": args.clusters});
        write_atomically(ready, &info.to_string())?;
    }
    eprintln!(
        "testbed: {} clusters, {listeners} nodes from {}, control {control_url}",
        args.clusters,
        layout.address(0, 0)?
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = server => r??,
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// The clusters a running testbed serves (from `GET /clusters` on its control port).
async fn served_clusters(control: &str) -> anyhow::Result<Vec<ClusterNodes>> {
    let url = format!("{}/clusters", control.trim_end_matches('/'));
    let state: Value = reqwest::get(&url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("GET {url}"))?
        .json()
        .await
        .with_context(|| format!("GET {url}: not JSON"))?;
    let mut out = Vec::new();
    for c in state["clusters"].as_array().into_iter().flatten() {
        let nodes = c["nodes"].as_array().into_iter().flatten();
        out.push(ClusterNodes {
            scope: c["scope"].as_str().unwrap_or_default().to_string(),
            nodes: nodes
                .map(|n| {
                    let field = |k: &str| n[k].as_str().unwrap_or_default().to_string();
                    (field("name"), field("api_url"))
                })
                .collect(),
        });
    }
    Ok(out)
}

async fn moto_world(args: MotoArgs) -> anyhow::Result<()> {
    let clusters = match &args.control {
        Some(control) => {
            let mut all = served_clusters(control).await?;
            all.truncate(args.clusters.unwrap_or(all.len()));
            all
        }
        None if args.node.is_empty() => bail!("name the nodes: --control URL or --node NAME=URL"),
        None => vec![ClusterNodes {
            scope: args.scope.clone(),
            nodes: args.node.clone(),
        }],
    };
    args.world.write_config(&clusters, &args.out).await
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = match Cmd::parse() {
        Cmd::Serve(a) => serve(a).await,
        Cmd::Moto(a) => moto_world(a).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("testbed: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
