//! A FAKE Patroni REST API for benchmarks (not Patroni): one port serves any number of
//! clusters, each node under its own path prefix, with HTTP/1.1 keep-alive so that the
//! client under test, not the server, is what gets measured.
//!
//!   GET  /<scope>/<member>/patroni    the member's own view (primary if it leads)
//!   GET  /<scope>/<member>/cluster    the DCS view: one leader, the others streaming
//!   POST /<scope>/leader/<member>     make <member> the leader of <scope> (timeline + 1)
//!
//! Clusters are `c0`..`c{N-1}` with members `pg1`..`pg3`; `pg1` leads at start.
//!   cargo run --release --example bench_fake_patroni -- 127.0.0.1:18100 1000

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MEMBERS: [&str; 3] = ["pg1", "pg2", "pg3"];

type Leaders = Arc<Mutex<HashMap<String, (String, u64)>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18100".into());
    let clusters: usize = args.next().unwrap_or_else(|| "1".into()).parse()?;
    let leaders: Leaders = Arc::new(Mutex::new(
        (0..clusters)
            .map(|i| (format!("c{i}"), ("pg1".to_string(), 1)))
            .collect(),
    ));
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("bench_fake_patroni: {clusters} clusters on {addr}");
    loop {
        let (sock, _) = listener.accept().await?;
        let leaders = Arc::clone(&leaders);
        tokio::spawn(async move {
            let _ = serve(sock, leaders).await;
        });
    }
}

async fn serve(mut sock: TcpStream, leaders: Leaders) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end);
        let mut parts = head.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let (status, body) = answer(method, path, &leaders);
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(resp.as_bytes()).await?;
    }
}

fn answer(method: &str, path: &str, leaders: &Leaders) -> (u16, String) {
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut l = leaders.lock().unwrap_or_else(|p| p.into_inner());
    match (method, seg.as_slice()) {
        ("POST", [scope, "leader", member]) if MEMBERS.contains(member) => {
            let Some(entry) = l.get_mut(*scope) else {
                return (404, "{}".into());
            };
            *entry = (member.to_string(), entry.1 + 1);
            (200, "{}".into())
        }
        ("GET", [scope, member, what]) if MEMBERS.contains(member) => {
            let Some((leader, tl)) = l.get(*scope).cloned() else {
                return (404, "{}".into());
            };
            match *what {
                "patroni" => {
                    let role = if *member == leader {
                        "primary"
                    } else {
                        "replica"
                    };
                    (
                        200,
                        format!(
                            r#"{{"state":"running","role":"{role}","timeline":{tl},"patroni":{{"version":"fake","scope":"{scope}","name":"{member}"}}}}"#
                        ),
                    )
                }
                "cluster" => {
                    let members: Vec<String> = MEMBERS
                        .iter()
                        .map(|m| {
                            if *m == leader {
                                format!(r#"{{"name":"{m}","role":"leader","state":"running","timeline":{tl}}}"#)
                            } else {
                                format!(r#"{{"name":"{m}","role":"replica","state":"streaming","timeline":{tl},"lag":0}}"#)
                            }
                        })
                        .collect();
                    (
                        200,
                        format!(r#"{{"members":[{}],"scope":"{scope}"}}"#, members.join(",")),
                    )
                }
                _ => (404, "{}".into()),
            }
        }
        _ => (404, "{}".into()),
    }
}
