//! `serve`'s front door under a flood: 2,000 clients that open a connection, send half a
//! request head and stall, against `serve` held to 1,024 open files (systemd's default). The
//! reconcile loop keeps routing, /healthz answers, and SIGTERM with those connections still
//! open ends the process promptly. AWS is moto, Patroni the fake.

mod common;

use std::time::{Duration, Instant};

use common::registered;
use common::serve::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Open `n` connections that each send half a request head, and keep them.
async fn slow_clients(port: u16, n: usize) -> (Vec<TcpStream>, usize) {
    let mut held = Vec::with_capacity(n);
    let mut refused = 0;
    for _ in 0..n {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(mut s) => {
                let _ = s
                    .write_all(b"POST /webhook HTTP/1.1\r\nHost: router\r\nX-Slow: ")
                    .await;
                held.push(s);
            }
            Err(_) => refused += 1,
        }
    }
    (held, refused)
}

/// Until GET /healthz answers 200; the time it took.
async fn healthz_answers(serve: &Serve, within: Duration) -> Duration {
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    loop {
        if let Ok(r) = http.get(serve.url("/healthz")).send().await
            && r.status() == 200
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "/healthz never answered: {}",
            serve.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_slow_clients_stops_neither_routing_nor_healthz_nor_shutdown() {
    // This test holds 2,000 sockets itself.
    let _ = rlimit::increase_nofile_limit(8192);
    let w = World::new().await;
    let args = ["--header-timeout", "2s"];
    let mut serve = Serve::start_limited(&w.config("500ms"), "1s", &args, Some(1024)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while registered(&w.aws, &w.tg).await != w.target(0) {
        assert!(Instant::now() < deadline, "not routed: {}", serve.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (held, refused) = slow_clients(serve.port, 2000).await;
    eprintln!(
        "flood: {} connections held by the clients, {refused} refused",
        held.len()
    );

    // A leader change during the flood is routed.
    w.set_view("pg2", 2, &[]);
    let changed = Instant::now();
    while registered(&w.aws, &w.tg).await != w.target(1) {
        assert!(
            changed.elapsed() < Duration::from_secs(10),
            "not routed during the flood: {}",
            serve.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let routed = changed.elapsed();
    let health = healthz_answers(&serve, Duration::from_secs(10)).await;
    record(&format!(
        "serve under 2000 slow clients (1024 open files, --interval 1s): leader change routed in {} ms, /healthz answered in {} ms",
        routed.as_millis(),
        health.as_millis()
    ));
    assert!(
        routed <= Duration::from_secs(2),
        "routed in {routed:?}: over --interval + 1 s"
    );

    // SIGTERM with the slow connections still open: out within 10 s.
    let pid = serve.child.id().expect("pid").to_string();
    let term = Instant::now();
    let kill = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(10), serve.child.wait())
        .await
        .expect("serve exits within 10 s of SIGTERM with idle connections open")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "{}", serve.logs());
    record(&format!(
        "serve SIGTERM with {} idle connections open: exited in {} ms",
        held.len(),
        term.elapsed().as_millis()
    ));
    drop(held);
}

/// Measurements go to stderr and to target/e2e-results.txt (`make test` prints the file).
fn record(line: &str) {
    use std::io::Write as _;
    eprintln!("{line}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e-results.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}
