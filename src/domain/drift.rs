//! Target-group hygiene: the settings a routing strategy depends on, compared with what AWS
//! holds. Pure: the AWS adapter reads [`TgSettings`] and applies a [`SettingsFix`].
//!
//! - `primary-only`: moving the registration is half a failover. By default an NLB keeps the
//!   old primary's connections open for the 300 s deregistration delay; clients keep writing to
//!   a demoted node or hang on it. Wanted: connection termination on deregistration, and a short
//!   delay.
//! - `members`: everything depends on the health check asking Patroni whether this node is the
//!   primary: HTTP on the REST port, path `/primary` (`/standby-leader` for a standby cluster),
//!   a short interval and thresholds, and connections to a node turned unhealthy terminated.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{Strategy, TargetGroupConfig};

pub const CONN_TERM_ON_DEREGISTRATION: &str = "deregistration_delay.connection_termination.enabled";
pub const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
pub const CONN_TERM_WHEN_UNHEALTHY: &str =
    "target_health_state.unhealthy.connection_termination.enabled";

/// What AWS uses when an attribute is absent (moto leaves some out until they are set).
fn aws_default(key: &str) -> &'static str {
    match key {
        CONN_TERM_ON_DEREGISTRATION => "false",
        DEREGISTRATION_DELAY => "300",
        CONN_TERM_WHEN_UNHEALTHY => "true",
        _ => "",
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    pub protocol: Option<String>,
    pub port: Option<String>,
    pub path: Option<String>,
    pub interval_seconds: Option<i32>,
    pub healthy_threshold: Option<i32>,
    pub unhealthy_threshold: Option<i32>,
}

/// A target group's settings as AWS holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TgSettings {
    pub attributes: BTreeMap<String, String>,
    pub health_check: HealthCheck,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub setting: String,
    pub current: String,
    pub desired: String,
}

/// The changes that bring a target group's settings in line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SettingsFix {
    pub attributes: Vec<(String, String)>,
    /// Only the fields to change are `Some`.
    pub health_check: Option<HealthCheck>,
}

impl SettingsFix {
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.health_check.is_none()
    }
}

fn show<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "(unset)".to_string(), ToString::to_string)
}

/// Compare; return the drift found and the fix for it.
pub fn check(
    tg: &TargetGroupConfig,
    standby_cluster: bool,
    current: &TgSettings,
) -> (Vec<Drift>, SettingsFix) {
    let mut found = Found::default();
    let attr = |key: &str| {
        current
            .attributes
            .get(key)
            .cloned()
            .unwrap_or_else(|| aws_default(key).to_string())
    };
    match tg.strategy {
        // A replica taken out of the read endpoint is lagging: its readers should move too.
        Strategy::PrimaryOnly | Strategy::Replicas => {
            let term = attr(CONN_TERM_ON_DEREGISTRATION);
            found.attribute(CONN_TERM_ON_DEREGISTRATION, &term, "true", term == "true");
            let delay = attr(DEREGISTRATION_DELAY);
            let short = delay.parse::<u32>().unwrap_or(u32::MAX) <= tg.max_deregistration_delay;
            let max = tg.max_deregistration_delay.to_string();
            found.attribute(DEREGISTRATION_DELAY, &delay, &max, short);
        }
        Strategy::Members => {
            let term = attr(CONN_TERM_WHEN_UNHEALTHY);
            found.attribute(CONN_TERM_WHEN_UNHEALTHY, &term, "true", term == "true");
            let path = if standby_cluster {
                "/standby-leader"
            } else {
                "/primary"
            };
            let wanted = HealthCheck {
                protocol: Some("HTTP".into()),
                port: Some(tg.health_check_port.to_string()),
                path: Some(path.into()),
                interval_seconds: Some(5),
                healthy_threshold: Some(2),
                unhealthy_threshold: Some(2),
            };
            found.health_check(&current.health_check, &wanted);
        }
    }
    (found.drift, found.fix)
}

/// Drift found so far, and the fix for it.
#[derive(Default)]
struct Found {
    drift: Vec<Drift>,
    fix: SettingsFix,
}

impl Found {
    fn attribute(&mut self, key: &str, current: &str, wanted: &str, ok: bool) {
        if ok {
            return;
        }
        self.drift.push(Drift {
            setting: key.to_string(),
            current: current.to_string(),
            desired: wanted.to_string(),
        });
        self.fix
            .attributes
            .push((key.to_string(), wanted.to_string()));
    }

    /// One health-check field: drift when it differs; the fix sets only differing fields.
    fn field<T: Clone + PartialEq + ToString>(
        &mut self,
        name: &str,
        current: &Option<T>,
        wanted: &Option<T>,
    ) -> Option<T> {
        if current == wanted {
            return None;
        }
        self.drift.push(Drift {
            setting: format!("health_check.{name}"),
            current: show(current),
            desired: show(wanted),
        });
        wanted.clone()
    }

    fn health_check(&mut self, hc: &HealthCheck, wanted: &HealthCheck) {
        let change = HealthCheck {
            protocol: self.field("protocol", &hc.protocol, &wanted.protocol),
            port: self.field("port", &hc.port, &wanted.port),
            path: self.field("path", &hc.path, &wanted.path),
            interval_seconds: self.field(
                "interval_seconds",
                &hc.interval_seconds,
                &wanted.interval_seconds,
            ),
            healthy_threshold: self.field(
                "healthy_threshold",
                &hc.healthy_threshold,
                &wanted.healthy_threshold,
            ),
            unhealthy_threshold: self.field(
                "unhealthy_threshold",
                &hc.unhealthy_threshold,
                &wanted.unhealthy_threshold,
            ),
        };
        if change != HealthCheck::default() {
            self.fix.health_check = Some(change);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::cluster;

    fn tg(strategy: Strategy) -> TargetGroupConfig {
        let mut t = cluster(2).target_groups.remove(0);
        t.strategy = strategy;
        t
    }

    #[test]
    fn primary_only_wants_termination_and_a_short_delay_with_aws_defaults_for_missing_keys() {
        let (drift, fix) = check(&tg(Strategy::PrimaryOnly), false, &TgSettings::default());
        let keys: Vec<&str> = drift.iter().map(|d| d.setting.as_str()).collect();
        assert_eq!(
            keys,
            vec![CONN_TERM_ON_DEREGISTRATION, DEREGISTRATION_DELAY]
        );
        assert_eq!(drift[0].current, "false", "missing = AWS default");
        assert_eq!(drift[1].current, "300");
        assert_eq!(
            fix.attributes,
            vec![
                (CONN_TERM_ON_DEREGISTRATION.to_string(), "true".to_string()),
                (DEREGISTRATION_DELAY.to_string(), "10".to_string()),
            ]
        );
        let mut ok = TgSettings::default();
        ok.attributes
            .insert(CONN_TERM_ON_DEREGISTRATION.into(), "true".into());
        ok.attributes
            .insert(DEREGISTRATION_DELAY.into(), "0".into());
        let (drift, fix) = check(&tg(Strategy::PrimaryOnly), false, &ok);
        assert!(drift.is_empty() && fix.is_empty(), "0 s is short enough");
    }

    #[test]
    fn members_wants_the_patroni_health_check() {
        let current = TgSettings {
            attributes: BTreeMap::new(),
            health_check: HealthCheck {
                protocol: Some("TCP".into()),
                port: Some("traffic-port".into()),
                path: None,
                interval_seconds: Some(30),
                healthy_threshold: Some(5),
                unhealthy_threshold: Some(2),
            },
        };
        let (drift, fix) = check(&tg(Strategy::Members), false, &current);
        let keys: Vec<&str> = drift.iter().map(|d| d.setting.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "health_check.protocol",
                "health_check.port",
                "health_check.path",
                "health_check.interval_seconds",
                "health_check.healthy_threshold",
            ]
        );
        let hc = fix.health_check.expect("a health check change");
        assert_eq!(hc.path.as_deref(), Some("/primary"));
        assert_eq!(hc.port.as_deref(), Some("8008"));
        assert_eq!(
            hc.unhealthy_threshold, None,
            "unchanged fields are left alone"
        );
        assert!(
            fix.attributes.is_empty(),
            "unhealthy termination defaults to true"
        );
        let (_, fix) = check(&tg(Strategy::Members), true, &current);
        assert_eq!(
            fix.health_check.and_then(|h| h.path).as_deref(),
            Some("/standby-leader")
        );
    }
}
