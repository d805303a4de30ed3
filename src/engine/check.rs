//! The preflight (`patroni-router check`): from where the router runs, ask every Patroni node,
//! make one read call to each AWS API the router uses, and read each configured target group
//! and record name. It changes nothing; [`crate::domain::check`] says what each failure means.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use futures_util::{StreamExt, stream};

use super::Router;
use crate::adapters::elb_batch;
use crate::config::{ClusterConfig, NodeConfig};
use crate::domain::aws::tg_name;
use crate::domain::check::{Check, CheckReport};
use crate::domain::ownership::Marker;

/// Nodes asked at once.
const NODES_AT_ONCE: usize = 32;

impl Router {
    /// Check every dependency of the config's clusters.
    pub async fn check(&self) -> CheckReport {
        let mut checks = vec![self.config_check()];
        let (nodes, groups, zones) = tokio::join!(
            self.check_nodes(),
            self.check_groups(),
            self.check_records()
        );
        checks.extend(nodes);
        checks.extend(groups);
        checks.extend(zones);
        checks.push(Check::skipped(
            "AWS writes",
            "RegisterTargets, DeregisterTargets, AddTags, RemoveTags and ChangeResourceRecordSets \
             are not tried (check changes nothing); the template and the Terraform module grant them",
        ));
        CheckReport::new(checks)
    }

    fn config_check(&self) -> Check {
        let c = &self.config.clusters;
        let nodes: usize = c.iter().map(|c| c.nodes.len()).sum();
        let groups: usize = c.iter().map(|c| c.target_groups.len()).sum();
        let records = c.iter().flat_map(|c| c.records()).count();
        Check::ok(
            "config",
            format!(
                "valid: {} clusters, {nodes} nodes, {groups} target groups, {records} records",
                c.len()
            ),
        )
    }

    async fn check_nodes(&self) -> Vec<Check> {
        let all: Vec<(&ClusterConfig, &NodeConfig)> = self
            .config
            .clusters
            .iter()
            .flat_map(|c| c.nodes.iter().map(move |n| (c, n)))
            .collect();
        stream::iter(all)
            .map(|(c, n)| self.check_node(c, n))
            .buffered(NODES_AT_ONCE)
            .collect()
            .await
    }

    async fn check_node(&self, cluster: &ClusterConfig, node: &NodeConfig) -> Check {
        let what = format!("patroni {}/{} ({})", cluster.scope, node.name, node.api_url);
        let started = std::time::Instant::now();
        let o = self.ports.patroni.observe(node).await;
        let ms = started.elapsed().as_millis();
        let status = match (&o.patroni, &o.cluster) {
            (Err(e), _) | (Ok(_), Err(e)) => return Check::patroni(what, e),
            (Ok(s), Ok(_)) => s,
        };
        let claims = &status.patroni;
        if claims.scope != cluster.scope || claims.name != node.name {
            let said = format!(
                "answers as scope {:?} member {:?}",
                claims.scope, claims.name
            );
            return Check::failed(
                what,
                said,
                "`api_url` points at another node, or `scope`/`name` differ from patroni.yml",
            );
        }
        Check::ok(
            what,
            format!(
                "{} {}, timeline {}, in {ms} ms",
                status.role,
                status.state,
                status.timeline.map_or("?".into(), |t| t.to_string())
            ),
        )
    }

    /// DescribeTargetGroups (by twenties) and DescribeTags for all, then each group's
    /// DescribeTargetHealth and DescribeTargetGroupAttributes.
    async fn check_groups(&self) -> Vec<Check> {
        let arns: Vec<String> = self
            .config
            .clusters
            .iter()
            .flat_map(|c| c.target_groups.iter().map(|tg| tg.arn.clone()))
            .collect();
        if arns.is_empty() {
            return Vec::new();
        }
        let elb = &*self.ports.elb;
        let (described, tags) = tokio::join!(
            elb_batch::describe_groups(elb, &arns),
            elb_batch::describe_tags(elb, &arns)
        );
        let per_group = join_all(arns.iter().map(|arn| async move {
            let (health, attributes) = tokio::join!(elb.target_health(arn), elb.attributes(arn));
            (arn, health, attributes)
        }))
        .await;
        let mut out = Vec::new();
        for (arn, health, attributes) in per_group {
            let what = format!("target group {}", tg_name(arn));
            let check = match (described.get(arn), health, attributes, tags.get(arn)) {
                (Some(Err(e)), ..) => Check::aws(what, e),
                (_, Err(e), ..) | (_, _, Err(e), _) => Check::aws(what, &e),
                (_, _, _, Some(Err(e))) => Check::aws(what, e),
                (Some(Ok(info)), Ok(targets), Ok(_), Some(Ok(tags))) => {
                    let owner = Marker::from_tags(tags).map_or("not marked yet".to_string(), |m| {
                        format!("marked by {}", m.owner)
                    });
                    Check::ok(
                        what,
                        format!(
                            "{} targets, {} registered, {owner}",
                            info.target_type,
                            targets.iter().filter(|t| t.is_active()).count()
                        ),
                    )
                }
                _ => Check::failed(what, "no answer for it", "check the ARN"),
            };
            out.push(check);
        }
        out
    }

    /// One ListResourceRecordSets per configured name (grouped per zone in the output).
    async fn check_records(&self) -> Vec<Check> {
        let mut names: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (_, d) in self.config.clusters.iter().flat_map(|c| c.records()) {
            names
                .entry(d.zone_id.as_str())
                .or_default()
                .push(d.name.as_str());
        }
        let route53 = &*self.ports.route53;
        join_all(names.into_iter().map(|(zone, names)| async move {
            let what = format!("hosted zone {zone}");
            let mut sets = 0;
            for name in &names {
                match route53.list(zone, Some(name)).await {
                    Ok(r) => sets += r.len(),
                    Err(e) => return Check::aws(format!("{what} record {name}"), &e),
                }
            }
            Check::ok(
                what,
                format!("{} names read, {sets} record sets at them", names.len()),
            )
        }))
        .await
    }
}
