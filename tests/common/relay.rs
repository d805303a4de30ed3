//! A TCP relay between the router and one Patroni node, for the end-to-end tests: forwards
//! connections until cut, then holds new ones unanswered — the node is unreachable from the
//! router, not from its cluster.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};

pub struct Relay {
    pub url: String,
    cut: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// Relay to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Relay {
        let target = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let cut = Arc::new(AtomicBool::new(false));
        let is_cut = Arc::clone(&cut);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let cut = is_cut.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    if cut {
                        // Unreachable: hold the connection, never answer.
                        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                        drop(inbound);
                        return;
                    }
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { url, cut, task }
    }

    pub fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }
}
