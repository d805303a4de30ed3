//! Route 53 through the AWS SDK: the [`Route53`] port (list record sets, one atomic change
//! batch).

use async_trait::async_trait;
use aws_sdk_route53::Client;
use aws_sdk_route53::types::{
    Change, ChangeAction as SdkAction, ChangeBatch, ResourceRecord, ResourceRecordSet,
    ResourceRecordSetFailover, RrType,
};

use std::sync::Arc;

use super::budget::Budget;
use super::{AwsError, ChangeAction, RecordChange, Route53};
use crate::config::normalize_record_name;
use crate::domain::aws::{FailoverRole, RecordSet, RecordType};

/// The SDK client as the [`Route53`] port; every request (each page too) waits for the budget.
#[derive(Clone)]
pub struct SdkRoute53 {
    pub client: Client,
    pub budget: Arc<Budget>,
}

/// Where the next page of a listing starts.
type Start = (String, Option<RrType>, Option<String>);

#[async_trait]
impl Route53 for SdkRoute53 {
    async fn list(&self, zone: &str, name: Option<&str>) -> Result<Vec<RecordSet>, AwsError> {
        let resource = match name {
            Some(n) => format!("hosted zone {zone} record {n}"),
            None => format!("hosted zone {zone}"),
        };
        let mut records = Vec::new();
        let mut start: Option<Start> = name.map(|n| (n.to_string(), None, None));
        loop {
            let mut req = self.client.list_resource_record_sets().hosted_zone_id(zone);
            if let Some((n, rtype, id)) = start.take() {
                req = req
                    .start_record_name(n)
                    .set_start_record_type(rtype)
                    .set_start_record_identifier(id);
            }
            let out = self
                .budget
                .sent("ListResourceRecordSets", &resource, req.send())
                .await?;
            for r in out.resource_record_sets() {
                let rname = normalize_record_name(&unescape(r.name()));
                if name.is_some_and(|n| n != rname) {
                    // Listing is ordered by name: once past ours, we are done.
                    return Ok(records);
                }
                records.push(from_sdk_record(r, rname));
            }
            match (out.is_truncated(), out.next_record_name()) {
                (true, Some(next)) => {
                    start = Some((
                        next.to_string(),
                        out.next_record_type().cloned(),
                        out.next_record_identifier().map(str::to_string),
                    ))
                }
                _ => return Ok(records),
            }
        }
    }

    async fn change(
        &self,
        zone: &str,
        changes: &[RecordChange],
        comment: &str,
    ) -> Result<(), AwsError> {
        let resource = format!("hosted zone {zone}");
        let bad = |e: String| AwsError::new("ChangeResourceRecordSets", &resource, None, e);
        let changes = changes
            .iter()
            .map(|c| {
                let action = match c.action {
                    ChangeAction::Create => SdkAction::Create,
                    ChangeAction::Delete => SdkAction::Delete,
                    ChangeAction::Upsert => SdkAction::Upsert,
                };
                Change::builder()
                    .action(action)
                    .resource_record_set(to_sdk(&c.record)?)
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let batch = ChangeBatch::builder()
            .comment(comment)
            .set_changes(Some(changes))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let request = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch)
            .send();
        self.budget
            .sent("ChangeResourceRecordSets", &resource, request)
            .await?;
        Ok(())
    }
}

/// Route 53 escapes some characters as `\NNN` octal; names we manage are plain, but compare fairly.
fn unescape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if digits.len() == 3 && digits.chars().all(|d| d.is_ascii_digit()) {
                if let Ok(code) = u8::from_str_radix(&digits, 8) {
                    out.push(char::from(code));
                    for _ in 0..3 {
                        chars.next();
                    }
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

fn from_sdk_record(r: &ResourceRecordSet, name: String) -> RecordSet {
    RecordSet {
        name,
        rtype: RecordType::from(r.r#type().as_str()),
        set_identifier: r.set_identifier().map(str::to_string),
        failover: r.failover().map(|f| FailoverRole::from(f.as_str())),
        ttl: r.ttl(),
        values: r
            .resource_records()
            .iter()
            .map(|v| v.value().to_string())
            .collect(),
        health_check_id: r.health_check_id().map(str::to_string),
        multivalue: r.multi_value_answer().unwrap_or(false),
        alias: r.alias_target().is_some(),
    }
}

fn to_sdk(r: &RecordSet) -> Result<ResourceRecordSet, String> {
    let records = r
        .values
        .iter()
        .map(|v| ResourceRecord::builder().value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    ResourceRecordSet::builder()
        .name(&r.name)
        .r#type(RrType::from(r.rtype.as_str()))
        .set_set_identifier(r.set_identifier.clone())
        .set_failover(
            r.failover
                .as_ref()
                .map(|f| ResourceRecordSetFailover::from(f.as_str())),
        )
        .set_ttl(r.ttl)
        .set_resource_records(Some(records))
        .set_health_check_id(r.health_check_id.clone())
        .set_multi_value_answer(r.multivalue.then_some(true))
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn octal_escapes_are_decoded() {
        assert_eq!(unescape("\\052.example.com."), "*.example.com.");
        assert_eq!(unescape("db.example.com."), "db.example.com.");
        assert_eq!(unescape("odd\\"), "odd\\");
    }
}
