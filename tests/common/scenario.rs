//! One cluster's worth of test world: moto resources (VPC, instances, target group, hosted
//! zone), fake Patroni nodes pg1..pg3, and a router over them; optionally through the
//! fault-injecting AWS proxy.

#![allow(dead_code)]

use std::sync::Arc;

use patroni_router::adapters::sdk::AwsClients;
use patroni_router::domain::report::{Mode, Report};
use patroni_router::engine::Router;
use serde_json::{Value, json};

use super::aws_proxy::AwsProxy;
use super::fake_patroni::FakeCluster;
use super::*;

pub struct Options {
    pub ip: bool,
    pub strategy: &'static str,
    pub routing: &'static str,
    /// Route AWS calls through the fault-injecting proxy.
    pub proxy: bool,
    /// Serve the fake nodes over HTTPS with this config.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Merged into the config's top level (e.g. `{"patroni": {...}, "aws": {...}}`).
    pub extra: Value,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ip: false,
            strategy: "primary-only",
            routing: "simple",
            proxy: false,
            tls: None,
            extra: json!({}),
        }
    }
}

pub struct Scenario {
    /// Straight to moto: what the assertions read.
    pub aws: AwsClients,
    pub net: Network,
    pub fake: FakeCluster,
    pub tg: String,
    pub zone: String,
    pub record: String,
    pub proxy: Option<AwsProxy>,
    pub router: Router,
    /// The config the router was built from.
    pub config: Value,
}

impl Scenario {
    pub async fn new(opts: Options) -> Scenario {
        let aws = aws().await;
        let net = network(3).await;
        let fake = match &opts.tls {
            None => FakeCluster::start("pgha", &["pg1", "pg2", "pg3"]).await,
            Some(tls) => {
                FakeCluster::start_tls("pgha", &["pg1", "pg2", "pg3"], Arc::clone(tls)).await
            }
        };
        let tg = create_target_group(&aws, &net.vpc_id, opts.ip).await;
        let (zone, zone_name) = create_zone(&aws, &net.vpc_id).await;
        let record = format!("db.{zone_name}");
        let proxy = if opts.proxy {
            Some(AwsProxy::start(moto_endpoint()).await)
        } else {
            None
        };
        let mut config = Scenario::config(&fake, &net, &tg, &zone, &record, &opts);
        if let Some(p) = &proxy {
            let aws_settings = config["aws"].as_object().cloned().unwrap_or_default();
            config["aws"] = json!(aws_settings);
            config["aws"]["endpoint_url"] = json!(p.url);
        }
        let router = router(&config.to_string()).await;
        Scenario {
            config,
            aws,
            net,
            fake,
            tg,
            zone,
            record,
            proxy,
            router,
        }
    }

    fn config(
        fake: &FakeCluster,
        net: &Network,
        tg: &str,
        zone: &str,
        record: &str,
        opts: &Options,
    ) -> Value {
        let nodes = nodes_json(fake, &net.instances);
        let mut config = json!({
            "patroni": {"request_timeout": "500ms", "poll_deadline": "2s"},
            "clusters": [{
                "scope": fake.scope,
                "nodes": nodes,
                "target_group": {"arn": tg, "port": 5432, "strategy": opts.strategy},
                "dns": {"hosted_zone_id": zone, "record_name": record, "ttl": 10, "routing": opts.routing}
            }]
        });
        if let (Some(c), Some(extra)) = (config.as_object_mut(), opts.extra.as_object()) {
            for (k, v) in extra {
                c.insert(k.clone(), v.clone());
            }
        }
        config
    }

    /// The same world with another config tweak (a new router over it).
    pub async fn router_with(&self, edit: impl FnOnce(&mut Value)) -> Router {
        let opts = Options::default();
        let mut config = Scenario::config(
            &self.fake,
            &self.net,
            &self.tg,
            &self.zone,
            &self.record,
            &opts,
        );
        edit(&mut config);
        router(&config.to_string()).await
    }

    pub fn proxy(&self) -> &AwsProxy {
        self.proxy
            .as_ref()
            .expect("scenario started with proxy: true")
    }

    pub fn instance(&self, i: usize) -> String {
        format!("{}:5432", self.net.instances[i].0)
    }

    pub fn ip(&self, i: usize) -> String {
        self.net.instances[i].1.clone()
    }

    pub async fn reconcile(&self) -> Report {
        self.router.run(Mode::Reconcile, None).await.expect("run")
    }

    pub async fn targets(&self) -> Vec<String> {
        registered(&self.aws, &self.tg).await
    }

    pub async fn a_record(&self) -> Vec<String> {
        let recs = records(&self.aws, &self.zone, &self.record).await;
        assert!(recs.len() <= 1, "one simple record expected: {recs:?}");
        recs.into_iter().next().map(|r| r.3).unwrap_or_default()
    }

    /// (target group, record) as moto holds them.
    pub async fn routing(&self) -> (Vec<String>, Vec<String>) {
        (self.targets().await, self.a_record().await)
    }

    /// Assert that moto routes to node `i` and nothing else.
    pub async fn assert_routed_to(&self, i: usize) {
        assert_eq!(
            self.routing().await,
            (vec![self.instance(i)], vec![self.ip(i)]),
            "routed to pg{}",
            i + 1
        );
    }
}

pub fn writes(r: &Report) -> usize {
    r.clusters.iter().map(|c| c.writes()).sum()
}
