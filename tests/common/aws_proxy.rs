//! A fault-injecting HTTP proxy in front of moto: forwards what the AWS SDK sends, counts
//! calls per operation, and answers chosen operations with AWS errors (Throttling,
//! PriorRequestNotComplete, AccessDenied, 5xx) or delays, a set number of times.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub enum Fault {
    /// An AWS error answer: HTTP status and error code.
    Error(u16, &'static str),
    /// Answer only after this long (to trip the SDK's attempt timeout).
    Delay(Duration),
}

#[derive(Default)]
struct State {
    faults: HashMap<String, (Fault, usize)>,
    calls: HashMap<String, usize>,
}

pub struct AwsProxy {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The operation a request is for: the Query `Action` (ELB), or the Route 53 REST route.
fn operation(method: &str, path: &str, body: &str) -> String {
    if let Some(i) = body.find("Action=") {
        let rest = &body[i + 7..];
        return rest.split('&').next().unwrap_or(rest).to_string();
    }
    let route = path.split('?').next().unwrap_or(path).trim_end_matches('/');
    if route.ends_with("/rrset") {
        return if method == "POST" {
            "ChangeResourceRecordSets"
        } else {
            "ListResourceRecordSets"
        }
        .into();
    }
    format!("{method} {route}")
}

/// The operations that change AWS state.
pub const WRITES: &[&str] = &[
    "RegisterTargets",
    "DeregisterTargets",
    "ChangeResourceRecordSets",
];

impl AwsProxy {
    pub async fn start(upstream: String) -> AwsProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let st = Arc::clone(&state);
        let http = reqwest::Client::new();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (st, http, upstream) = (Arc::clone(&st), http.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = handle(sock, st, http, upstream).await;
                });
            }
        });
        AwsProxy { url, state, task }
    }

    /// Answer the next `times` calls of `op` with `fault`.
    pub fn inject(&self, op: &str, fault: Fault, times: usize) {
        self.state
            .lock()
            .expect("proxy")
            .faults
            .insert(op.to_string(), (fault, times));
    }

    pub fn clear(&self) {
        self.state.lock().expect("proxy").faults.clear();
    }

    pub fn calls(&self, op: &str) -> usize {
        self.state
            .lock()
            .expect("proxy")
            .calls
            .get(op)
            .copied()
            .unwrap_or(0)
    }

    /// (reads, writes) so far.
    pub fn totals(&self) -> (usize, usize) {
        let st = self.state.lock().expect("proxy");
        let writes: usize = st
            .calls
            .iter()
            .filter(|(k, _)| WRITES.contains(&k.as_str()))
            .map(|(_, v)| v)
            .sum();
        let all: usize = st.calls.values().sum();
        (all - writes, writes)
    }

    pub fn reset_counts(&self) {
        self.state.lock().expect("proxy").calls.clear();
    }
}

async fn handle(
    mut sock: TcpStream,
    st: Arc<Mutex<State>>,
    http: reqwest::Client,
    upstream: String,
) -> std::io::Result<()> {
    // Read the head, then the body by Content-Length (the SDK sends no chunked bodies here).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let (method, path) = (
        first.next().unwrap_or("GET").to_string(),
        first.next().unwrap_or("/").to_string(),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..].to_vec();
    let op = operation(&method, &path, &String::from_utf8_lossy(&body));
    let fault = {
        let mut s = st.lock().expect("proxy");
        *s.calls.entry(op.clone()).or_default() += 1;
        match s.faults.get_mut(&op) {
            Some((f, n)) if *n > 0 => {
                *n -= 1;
                Some(f.clone())
            }
            _ => None,
        }
    };
    let (status, content_type, out) = match fault {
        Some(Fault::Error(status, code)) => {
            let xml = format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
                 <Message>injected by the test proxy</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
            );
            (status, "text/xml".to_string(), xml.into_bytes())
        }
        other => {
            if let Some(Fault::Delay(d)) = other {
                tokio::time::sleep(d).await;
            }
            let mut req = http.request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET),
                format!("{upstream}{path}"),
            );
            for (k, v) in &headers {
                if k != "host" && k != "content-length" && k != "connection" {
                    req = req.header(k, v);
                }
            }
            match req.body(body).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let ct = resp
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("text/xml")
                        .to_string();
                    (
                        status,
                        ct,
                        resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
                    )
                }
                Err(_) => (502, "text/plain".into(), b"upstream failed".to_vec()),
            }
        }
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-requestid: proxy\r\nConnection: close\r\n\r\n",
        out.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(&out).await?;
    sock.shutdown().await
}
