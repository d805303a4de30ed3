//! An in-memory AWS (testkit): target groups and hosted zones behind the [`Elb`] and
//! [`Route53`] ports, enforcing the rules real AWS enforces that the router depends on —
//! a change batch is atomic; a DELETE must match the record set exactly; a CREATE fails if
//! the record set exists; a simple record and a routing-policy record cannot share a name
//! and type; DescribeTargetGroups fails whole for an unknown ARN; deregistering an unknown
//! target succeeds. Calls are counted per operation and failures can be injected, so the
//! engine's safety rules are unit tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{AwsError, ChangeAction, Elb, GroupInfo, RecordChange, Route53, Tags};
use crate::domain::aws::{RecordSet, RegisteredTarget, Target, TargetHealth, TargetType};
use crate::domain::drift::{HealthCheck, SettingsFix};

/// A failure to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Throttle,
    AccessDenied,
    /// Any other error, with this message.
    Error(String),
}

impl Fault {
    fn error(&self, op: &'static str, resource: &str) -> AwsError {
        let (code, message) = match self {
            Fault::Throttle => ("Throttling", "Rate exceeded".to_string()),
            Fault::AccessDenied => ("AccessDenied", "not authorized".to_string()),
            Fault::Error(m) => ("InternalFailure", m.clone()),
        };
        AwsError::new(op, resource, Some(code), format!("{code}: {message}"))
    }
}

#[derive(Debug, Default, Clone)]
struct Group {
    target_type: Option<TargetType>,
    health_check: HealthCheck,
    targets: BTreeMap<Target, TargetHealth>,
    attributes: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
}

struct Injected {
    op: &'static str,
    resource: Option<String>,
    fault: Fault,
    times: usize,
}

#[derive(Default)]
struct State {
    groups: BTreeMap<String, Group>,
    zones: BTreeMap<String, Vec<RecordSet>>,
    faults: Vec<Injected>,
    calls: Vec<(&'static str, String)>,
}

/// The in-memory AWS. Cheap to create; every test makes its own.
#[derive(Default)]
pub struct MemoryAws {
    state: Mutex<State>,
}

/// The operations that change something.
pub const WRITE_OPERATIONS: &[&str] = &[
    "RegisterTargets",
    "DeregisterTargets",
    "ChangeResourceRecordSets",
    "ModifyTargetGroupAttributes",
    "ModifyTargetGroup",
    "AddTags",
    "RemoveTags",
];

impl MemoryAws {
    pub fn new() -> MemoryAws {
        MemoryAws::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_target_group(&self, arn: &str, target_type: TargetType) {
        self.lock().groups.insert(
            arn.to_string(),
            Group {
                target_type: Some(target_type),
                ..Group::default()
            },
        );
    }

    /// Registered targets as `id:port`, sorted.
    pub fn targets(&self, arn: &str) -> Vec<String> {
        self.lock()
            .groups
            .get(arn)
            .map(|g| g.targets.keys().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    /// A target group's tags, as someone else would set them.
    pub fn set_tags(&self, arn: &str, tags: &[(&str, &str)]) {
        if let Some(g) = self.lock().groups.get_mut(arn) {
            g.tags = tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        }
    }

    pub fn tags_of(&self, arn: &str) -> Tags {
        self.lock()
            .groups
            .get(arn)
            .map(|g| g.tags.clone())
            .unwrap_or_default()
    }

    /// Every record set of a zone, as it is (no call counted).
    pub fn records(&self, zone: &str) -> Vec<RecordSet> {
        self.lock().zones.get(zone).cloned().unwrap_or_default()
    }

    pub fn set_attribute(&self, arn: &str, key: &str, value: &str) {
        if let Some(g) = self.lock().groups.get_mut(arn) {
            g.attributes.insert(key.to_string(), value.to_string());
        }
    }

    pub fn add_zone(&self, zone: &str) {
        self.lock().zones.entry(zone.to_string()).or_default();
    }

    /// Put a record set as someone else would (no rules checked, no call counted).
    pub fn put_record(&self, zone: &str, record: RecordSet) {
        let mut s = self.lock();
        let records = s.zones.entry(zone.to_string()).or_default();
        records.retain(|r| key(r) != key(&record));
        records.push(record);
        records.sort_by_key(key);
    }

    /// The next `times` calls of `op` fail with `fault`.
    pub fn fail(&self, op: &'static str, fault: Fault, times: usize) {
        self.inject(op, None, fault, times);
    }

    /// The next `times` calls of `op` on a resource containing `resource` fail.
    pub fn fail_on(&self, op: &'static str, resource: &str, fault: Fault, times: usize) {
        self.inject(op, Some(resource.to_string()), fault, times);
    }

    fn inject(&self, op: &'static str, resource: Option<String>, fault: Fault, times: usize) {
        self.lock().faults.push(Injected {
            op,
            resource,
            fault,
            times,
        });
    }

    /// How many calls of `op` were made.
    pub fn calls(&self, op: &str) -> usize {
        self.lock().calls.iter().filter(|(o, _)| *o == op).count()
    }

    /// How many write calls were made (whether they succeeded or not).
    pub fn writes(&self) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|(o, _)| WRITE_OPERATIONS.contains(o))
            .count()
    }

    /// Every call so far: (operation, resource).
    pub fn call_log(&self) -> Vec<(&'static str, String)> {
        self.lock().calls.clone()
    }

    /// Count the call; fail it if a fault is armed for it.
    fn enter(&self, op: &'static str, resource: &str) -> Result<(), AwsError> {
        let mut s = self.lock();
        s.calls.push((op, resource.to_string()));
        let armed = s.faults.iter_mut().find(|f| {
            f.op == op && f.times > 0 && f.resource.as_deref().is_none_or(|r| resource.contains(r))
        });
        match armed {
            Some(f) => {
                f.times -= 1;
                Err(f.fault.error(op, resource))
            }
            None => Ok(()),
        }
    }

    fn with_group<T>(
        &self,
        op: &'static str,
        arn: &str,
        f: impl FnOnce(&mut Group) -> T,
    ) -> Result<T, AwsError> {
        self.enter(op, arn)?;
        let mut s = self.lock();
        let g = s.groups.get_mut(arn).ok_or_else(|| not_found(op, arn))?;
        Ok(f(g))
    }
}

fn not_found(op: &'static str, arn: &str) -> AwsError {
    AwsError::new(
        op,
        arn,
        Some("TargetGroupNotFound"),
        format!("TargetGroupNotFound: {arn} not found"),
    )
}

/// What identifies a record set in a zone.
fn key(r: &RecordSet) -> (String, String, Option<String>) {
    (
        r.name.clone(),
        r.rtype.to_string(),
        r.set_identifier.clone(),
    )
}

#[async_trait]
impl Elb for MemoryAws {
    async fn describe_target_groups(
        &self,
        arns: &[String],
    ) -> Result<Vec<(String, GroupInfo)>, AwsError> {
        self.enter("DescribeTargetGroups", &arns.join(", "))?;
        let s = self.lock();
        arns.iter()
            .map(|arn| {
                let g = s
                    .groups
                    .get(arn)
                    .ok_or_else(|| not_found("DescribeTargetGroups", arn))?;
                let info = GroupInfo {
                    target_type: g.target_type.clone().unwrap_or(TargetType::Ip),
                    health_check: g.health_check.clone(),
                };
                Ok((arn.clone(), info))
            })
            .collect()
    }

    async fn target_health(&self, arn: &str) -> Result<Vec<RegisteredTarget>, AwsError> {
        self.with_group("DescribeTargetHealth", arn, |g| {
            g.targets
                .iter()
                .map(|(t, h)| RegisteredTarget {
                    target: t.clone(),
                    state: h.clone(),
                })
                .collect()
        })
    }

    async fn register(&self, arn: &str, targets: &[Target]) -> Result<(), AwsError> {
        self.with_group("RegisterTargets", arn, |g| {
            for t in targets {
                g.targets.insert(t.clone(), TargetHealth::Healthy);
            }
        })
    }

    async fn deregister(&self, arn: &str, targets: &[Target]) -> Result<(), AwsError> {
        // Real AWS: deregistering a target that is not registered succeeds.
        self.with_group("DeregisterTargets", arn, |g| {
            for t in targets {
                g.targets.remove(t);
            }
        })
    }

    async fn attributes(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        self.with_group("DescribeTargetGroupAttributes", arn, |g| {
            g.attributes.clone()
        })
    }

    async fn modify_settings(&self, arn: &str, fix: &SettingsFix) -> Result<(), AwsError> {
        if !fix.attributes.is_empty() {
            self.with_group("ModifyTargetGroupAttributes", arn, |g| {
                for (k, v) in &fix.attributes {
                    g.attributes.insert(k.clone(), v.clone());
                }
            })?;
        }
        if let Some(hc) = &fix.health_check {
            self.with_group("ModifyTargetGroup", arn, |g| {
                let cur = &mut g.health_check;
                cur.protocol = hc.protocol.clone().or(cur.protocol.take());
                cur.port = hc.port.clone().or(cur.port.take());
                cur.path = hc.path.clone().or(cur.path.take());
                cur.interval_seconds = hc.interval_seconds.or(cur.interval_seconds);
                cur.healthy_threshold = hc.healthy_threshold.or(cur.healthy_threshold);
                cur.unhealthy_threshold = hc.unhealthy_threshold.or(cur.unhealthy_threshold);
            })?;
        }
        Ok(())
    }

    async fn tags(&self, arns: &[String]) -> Result<Vec<(String, Tags)>, AwsError> {
        self.enter("DescribeTags", &arns.join(", "))?;
        let s = self.lock();
        arns.iter()
            .map(|arn| {
                let g = s
                    .groups
                    .get(arn)
                    .ok_or_else(|| not_found("DescribeTags", arn))?;
                Ok((arn.clone(), g.tags.clone()))
            })
            .collect()
    }

    async fn add_tags(&self, arn: &str, tags: &[(String, String)]) -> Result<(), AwsError> {
        self.with_group("AddTags", arn, |g| {
            g.tags.extend(tags.iter().cloned());
        })
    }

    async fn remove_tags(&self, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        self.with_group("RemoveTags", arn, |g| {
            for k in keys {
                g.tags.remove(k);
            }
        })
    }
}

/// Route 53's rules for one change applied to `records`; the batch fails on the first error.
fn apply_change(records: &mut Vec<RecordSet>, c: &RecordChange) -> Result<(), String> {
    let k = key(&c.record);
    let pos = records.iter().position(|r| key(r) == k);
    match (c.action, pos) {
        (ChangeAction::Create, Some(_)) => {
            return Err(format!(
                "Tried to create resource record set {} type {} but it already exists",
                k.0, k.1
            ));
        }
        (ChangeAction::Delete, Some(i)) if records[i] == c.record => {
            records.remove(i);
            return Ok(());
        }
        (ChangeAction::Delete, _) => {
            return Err(format!(
                "Tried to delete resource record set {} type {} but it was not found",
                k.0, k.1
            ));
        }
        (ChangeAction::Upsert, Some(i)) => {
            records.remove(i);
        }
        (ChangeAction::Create | ChangeAction::Upsert, None) => {}
    }
    let mixes = records.iter().any(|r| {
        r.name == c.record.name
            && r.rtype == c.record.rtype
            && r.set_identifier.is_some() != c.record.set_identifier.is_some()
    });
    if mixes {
        return Err(format!(
            "{} {}: a simple record and a routing-policy record cannot share a name and type",
            k.0, k.1
        ));
    }
    records.push(c.record.clone());
    records.sort_by_key(key);
    Ok(())
}

#[async_trait]
impl Route53 for MemoryAws {
    async fn list(&self, zone: &str, name: Option<&str>) -> Result<Vec<RecordSet>, AwsError> {
        self.enter("ListResourceRecordSets", zone)?;
        let s = self.lock();
        let records = s.zones.get(zone).ok_or_else(|| {
            AwsError::new(
                "ListResourceRecordSets",
                zone,
                Some("NoSuchHostedZone"),
                format!("NoSuchHostedZone: {zone}"),
            )
        })?;
        Ok(records
            .iter()
            .filter(|r| name.is_none_or(|n| r.name == n))
            .cloned()
            .collect())
    }

    async fn change(
        &self,
        zone: &str,
        changes: &[RecordChange],
        _comment: &str,
    ) -> Result<(), AwsError> {
        self.enter("ChangeResourceRecordSets", zone)?;
        let mut s = self.lock();
        let records = s.zones.get_mut(zone).ok_or_else(|| {
            AwsError::new(
                "ChangeResourceRecordSets",
                zone,
                Some("NoSuchHostedZone"),
                format!("NoSuchHostedZone: {zone}"),
            )
        })?;
        // Atomic: applied to a copy, committed only if every change holds.
        let mut next = records.clone();
        for c in changes {
            apply_change(&mut next, c).map_err(|m| {
                AwsError::new(
                    "ChangeResourceRecordSets",
                    zone,
                    Some("InvalidChangeBatch"),
                    format!("InvalidChangeBatch: {m}"),
                )
            })?;
        }
        *records = next;
        Ok(())
    }
}
