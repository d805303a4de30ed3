//! Benchmark driver (not part of the product): builds one `Router` (as a warm Lambda or `watch`
//! holds one) and times `--repeat` reconciles in-process. With `--flip URL` (the control URL of
//! `examples/testbed.rs`), before each run it moves every cluster's leader (untimed), so each
//! run is a failover.
//! The router reads AWS as the Lambda's does (change-driven; `--always-read`: every run reads,
//! as a one-shot `reconcile`).
//! Prints one JSON line: {"durations_ms": [...], "cpu_ms": [...], "writes": [...]} (CPU: user +
//! system of this process). One untimed warm-up run comes first; with BENCH_RESET_RECORDING
//! set, moto's request recorder is reset after it.
//!
//!   cargo run --release --example bench_reconcile -- --config c.json --repeat 20 [--flip http://127.0.0.1:PORT]

use std::time::Instant;

use patroni_router::adapters::sdk::AwsClients;
use patroni_router::config::Config;
use patroni_router::domain::report::Mode;
use patroni_router::engine::Router;

// One thread, as the Lambda runs (see src/main.rs).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let config = Config::from_file(std::path::Path::new(
        &value("--config").ok_or_else(|| anyhow::anyhow!("--config FILE"))?,
    ))?;
    let repeat: usize = value("--repeat").unwrap_or_else(|| "10".into()).parse()?;
    let flip = value("--flip");
    let scopes: Vec<String> = config.clusters.iter().map(|c| c.scope.clone()).collect();
    let aws = AwsClients::new(&config.aws).await;
    let router = Router::new(config, aws)?;
    let router = match args.iter().any(|a| a == "--always-read") {
        true => router,
        false => router.with_change_driven_reads(),
    };
    let http = reqwest::Client::new();
    // An untimed warm-up: a warm Lambda or `watch` has done its first run long ago.
    router.run(Mode::Reconcile, None).await?;
    if std::env::var_os("BENCH_RESET_RECORDING").is_some() {
        let moto = std::env::var("AWS_ENDPOINT_URL")?;
        http.post(format!("{moto}/moto-api/recorder/reset-recording"))
            .send()
            .await?;
    }
    let (mut durations, mut writes, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..repeat {
        if let Some(base) = &flip {
            let leader = ["pg2", "pg3", "pg1"][i % 3];
            for s in &scopes {
                http.post(format!("{base}/clusters/{s}/leader/{leader}"))
                    .send()
                    .await?
                    .error_for_status()?;
            }
        }
        let (started, cpu0) = (Instant::now(), cpu_ms());
        let report = router.run(Mode::Reconcile, None).await?;
        durations.push(started.elapsed().as_secs_f64() * 1000.0);
        cpu.push(cpu_ms() - cpu0);
        writes.push(report.clusters.iter().map(|c| c.writes()).sum::<usize>());
        anyhow::ensure!(report.ok, "run {i} had errors: {}", report.to_text());
    }
    println!(
        "{}",
        serde_json::json!({"durations_ms": durations, "cpu_ms": cpu, "writes": writes})
    );
    Ok(())
}

/// User + system CPU of this process so far (ms).
fn cpu_ms() -> f64 {
    // SAFETY: getrusage writes only the struct passed, which we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(u.ru_utime) + ms(u.ru_stime)
}
