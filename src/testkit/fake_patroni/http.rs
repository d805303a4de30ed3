//! The fake Patroni's HTTP(S) face: one listener per node on an address and port of its own,
//! answering each request with the reply the test (or the testbed's control port) set, then
//! closing the connection as Patroni's REST API does. A listener can be stopped (connections
//! are then refused, as from a dead Patroni) and started again on the same address.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{InFlight, Reply, Shared};

/// Where a node listens, and its accept loop while it does.
pub(super) struct Listener {
    pub(super) addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Listener {
    /// Bind `addr` (port 0: any free port) and start answering from `state`.
    pub(super) async fn bind(
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
        state: &Shared,
    ) -> std::io::Result<Listener> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = spawn_accept_loop(listener, tls.clone(), Arc::clone(state));
        Ok(Listener {
            addr,
            tls,
            task: Mutex::new(Some(task)),
        })
    }

    pub(super) fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    fn task(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        self.task.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stop listening: once this returns, new connections are refused. Requests already
    /// accepted finish.
    pub(super) async fn stop(&self) {
        let task = self.task().take();
        if let Some(t) = task {
            t.abort();
            // Resolves once the loop (and its socket) is dropped.
            let _ = t.await;
        }
    }

    pub(super) fn is_listening(&self) -> bool {
        self.task().as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Listen again on the same address (a no-op when listening).
    pub(super) async fn start(&self, state: &Shared) -> std::io::Result<()> {
        if self.is_listening() {
            return Ok(());
        }
        // The aborted loop drops its socket when the runtime next polls it: retry briefly.
        let mut last = None;
        for _ in 0..50 {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => {
                    let task = spawn_accept_loop(listener, self.tls.clone(), Arc::clone(state));
                    *self.task() = Some(task);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("bind failed")))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(t) = self.task().take() {
            t.abort();
        }
    }
}

fn spawn_accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    st: Shared,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                // Out of descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let st = Arc::clone(&st);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => answer(sock, st).await,
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(sock).await {
                            answer(stream, st).await;
                        }
                    }
                }
            });
        }
    })
}

/// Answer one request on one connection, as the test set it up; then close it (Patroni's
/// REST API speaks HTTP/1.0-style, one request per connection).
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, st: Shared) {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => len += n,
        }
        if len == buf.len() {
            return;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (_in_flight, reply) = InFlight::enter(&st, &path);
    let (status, body) = match reply {
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        Reply::Close => return,
        Reply::Slow(d, body) => {
            tokio::time::sleep(d).await;
            (200, body.into_bytes())
        }
        Reply::Json(status, body) => (status, body.into_bytes()),
        Reply::Raw(bytes) => (200, bytes),
        Reply::Redirect(to) => {
            let resp = format!(
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            return;
        }
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(&body).await;
    let _ = sock.shutdown().await;
}
