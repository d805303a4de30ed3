//! A TEST STAND-IN for the NLB data plane: a TCP forwarder on loopback that sends each new
//! connection to the target group's registered target as moto holds it (instance id -> local
//! PostgreSQL port), and closes connections to a target once it is deregistered (what an NLB
//! does with connection termination on deregistration enabled).

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use patroni_router::adapters::sdk::AwsClients;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Forwarder {
    pub port: u16,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Forwarder {
    /// `backends`: instance id -> local port of that node's PostgreSQL.
    pub async fn start(aws: AwsClients, tg: String, backends: HashMap<String, u16>) -> Forwarder {
        let (tx, rx) = watch::channel::<Option<u16>>(None);
        let follow = tokio::spawn(async move {
            loop {
                if let Ok(out) = aws
                    .elb
                    .describe_target_health()
                    .target_group_arn(&tg)
                    .send()
                    .await
                {
                    let mut ports: Vec<u16> = out
                        .target_health_descriptions()
                        .iter()
                        .filter_map(|d| d.target()?.id())
                        .filter_map(|id| backends.get(id).copied())
                        .collect();
                    ports.sort();
                    // Two targets only for the instant between register and deregister.
                    let _ = tx.send_if_modified(|cur| {
                        let next = ports.last().copied();
                        let changed = *cur != next;
                        *cur = next;
                        changed
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind forwarder");
        let port = listener.local_addr().expect("addr").port();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut rx = rx.clone();
                let Some(backend) = *rx.borrow_and_update() else {
                    continue;
                };
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", backend)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        // Deregistered: cut the connection.
                        _ = async { while rx.changed().await.is_ok() && *rx.borrow() == Some(backend) {} } => {}
                    }
                });
            }
        });
        Forwarder {
            port,
            tasks: vec![follow, accept],
        }
    }
}
