//! End to end on REAL Patroni: the fence. The leader's Patroni is frozen (SIGSTOP), another
//! node is promoted and routed; then the new leader and the third node become unreachable
//! from the router and the old leader thaws — its REST API answering again from where it
//! froze. Routing stays on the new leader in every sample.
//!
//! Needs root and `scripts/localcluster.sh install` (which `make test` runs).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::cluster::*;
use common::relay::Relay;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thawed_old_leader_is_never_routed_back_to() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::up(false).await;
    let mut relays: HashMap<String, Relay> = HashMap::new();
    for (name, url) in &c.nodes {
        relays.insert(name.clone(), Relay::start(url).await);
    }
    let urls: HashMap<String, String> = relays
        .iter()
        .map(|(n, r)| (n.clone(), r.url.clone()))
        .collect();
    let (env, _watch) = route(&c, |name, _| urls[name].clone()).await;
    let sampler = Sampler::start(env.aws.clone(), env.tg.clone(), &c);

    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("http");
    let old = primaries(&http, &c.nodes).await.pop().expect("a primary");
    assert!(
        env.wait_routed(&env.target(c.index(&old)), Duration::from_secs(30))
            .await,
        "initial routing"
    );
    c.run("freeze", Some(&old)).await;
    let new = wait_primary_other_than(&c, &old, Duration::from_secs(60))
        .await
        .expect("a failover after the freeze");
    let want = env.target(c.index(&new));
    assert!(
        env.wait_routed(&want, Duration::from_secs(30)).await,
        "the new leader routed"
    );

    // Only the old leader is reachable from the router now; it thaws.
    for (name, relay) in &relays {
        relay.cut(*name != old);
    }
    let mark = sampler.mark();
    c.run("thaw", Some(&old)).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let samples = sampler.since(mark);
    assert!(
        samples.len() > 50,
        "sampled while the old leader thawed: {}",
        samples.len()
    );
    for s in &samples {
        assert_eq!(
            s.targets, want,
            "routed back to the thawed old leader: {s:?}"
        );
    }
    record(&format!(
        "fence: old leader {old} thawed with the new leader {new} unreachable from the router: \
         routing stayed on {new} in all {} samples (100 ms)",
        samples.len()
    ));
    // Reachable again: routing stays, and the cluster converges.
    for relay in relays.values() {
        relay.cut(false);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(common::registered(&env.aws, &env.tg).await, want);
}
