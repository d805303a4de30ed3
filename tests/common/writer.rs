//! A writer client, the way every PostgreSQL client behind a failover should be written:
//! write numbered rows; on any error, reconnect with exponential backoff and full jitter, and
//! retry the same row idempotently (`ON CONFLICT DO NOTHING`: the first attempt may have
//! committed although its answer was lost). It records which rows were acknowledged and how
//! long each write-error window lasted; `verify` then reports acknowledged rows that are missing.
//!
//! Used by the end-to-end test, and runnable by hand: `cargo run --example writer -- HOST:PORT`.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::{Client, NoTls};

#[derive(Debug, Default, Clone)]
pub struct WriteLog {
    /// Highest row id acknowledged (rows 1..=acked were all acknowledged, in order).
    pub acked: i64,
    /// Each window from the first failed write to the next acknowledged one.
    pub error_windows: Vec<Duration>,
    pub reconnects: u32,
}

pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

impl Target {
    fn conninfo(&self) -> String {
        format!(
            "host={} port={} user={} password={} dbname=postgres connect_timeout=2",
            self.host, self.port, self.user, self.password
        )
    }
}

async fn connect(target: &Target) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(&target.conninfo(), NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// 50 ms doubling to 2 s, full jitter: reconnect storms from many clients spread out.
fn backoff(attempt: u32) -> Duration {
    let cap = 50u64.saturating_mul(1u64 << attempt.min(6)).min(2_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    Duration::from_millis(nanos % (cap + 1))
}

/// Write rows 1, 2, 3, ... until `stop` turns true.
pub async fn run(target: Target, mut stop: watch::Receiver<bool>) -> WriteLog {
    let mut log = WriteLog::default();
    let mut client: Option<Client> = None;
    let mut failing_since: Option<Instant> = None;
    let mut attempt = 0u32;
    let mut next = 1i64;
    while !*stop.borrow() {
        if client.as_ref().is_none_or(|c| c.is_closed())
            && let Ok(c) = connect(&target).await
        {
            let ddl = "CREATE TABLE IF NOT EXISTS router_writes (id bigint PRIMARY KEY, at timestamptz DEFAULT now())";
            if c.batch_execute(ddl).await.is_ok() {
                client = Some(c);
            }
        }
        let written = match &client {
            Some(c) => c
                .execute(
                    "INSERT INTO router_writes (id) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&next],
                )
                .await
                .is_ok(),
            None => false,
        };
        if written {
            {
                log.acked = next;
                next += 1;
                attempt = 0;
                if let Some(since) = failing_since.take() {
                    log.error_windows.push(since.elapsed());
                }
            }
        } else {
            {
                failing_since.get_or_insert_with(Instant::now);
                client = None;
                log.reconnects += 1;
                attempt += 1;
                tokio::select! {
                    _ = tokio::time::sleep(backoff(attempt)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
    log
}

/// Acknowledged rows missing from the database now (read through `target`).
pub async fn missing(target: &Target, log: &WriteLog) -> Result<Vec<i64>, tokio_postgres::Error> {
    let client = connect(target).await?;
    let rows = client
        .query("SELECT id FROM router_writes WHERE id <= $1", &[&log.acked])
        .await?;
    let mut present = vec![false; usize::try_from(log.acked).unwrap_or(0) + 1];
    for r in rows {
        let id: i64 = r.get(0);
        if let Some(slot) = usize::try_from(id).ok().and_then(|i| present.get_mut(i)) {
            *slot = true;
        }
    }
    Ok((1..=log.acked).filter(|i| !present[*i as usize]).collect())
}
