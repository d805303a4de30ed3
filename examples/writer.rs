//! The failover writer client by hand: writes numbered rows through HOST:PORT (the address the
//! router maintains) with reconnect, backoff and jitter, until Ctrl-C; then reports the rows
//! acknowledged, the write-error windows, and any acknowledged row missing.
//!
//!   cargo run --example writer -- 127.0.0.1:5432 [USER [PASSWORD]]

#[path = "../tests/common/writer.rs"]
mod writer;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: writer HOST:PORT [USER [PASSWORD]]"))?;
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("{addr:?}: expected HOST:PORT"))?;
    let target = || -> anyhow::Result<writer::Target> {
        Ok(writer::Target {
            host: host.to_string(),
            port: port.parse()?,
            user: std::env::args().nth(2).unwrap_or_else(|| "postgres".into()),
            password: std::env::args().nth(3).unwrap_or_default(),
        })
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(writer::run(target()?, rx));
    tokio::signal::ctrl_c().await?;
    let _ = stop.send(true);
    let log = run.await?;
    let missing = writer::missing(&target()?, &log).await?;
    println!(
        "acknowledged rows: {}, reconnects: {}, write-error windows: {:?}, acknowledged but missing: {:?}",
        log.acked, log.reconnects, log.error_windows, missing
    );
    Ok(())
}
