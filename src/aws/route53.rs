//! Route 53: read the record sets at a name; apply UPSERTs and DELETEs as one change batch per zone.

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet,
    ResourceRecordSetFailover, RrType,
};

use super::{AwsClients, AwsError};
use crate::plan::{DnsState, RecordSet};

/// Read every record set at `name` (all types and set identifiers), following pagination.
pub async fn read(aws: &AwsClients, zone_id: &str, name: &str) -> Result<DnsState, AwsError> {
    let resource = format!("hosted zone {zone_id} record {name}");
    let mut records = Vec::new();
    let mut start: Option<(String, Option<RrType>, Option<String>)> =
        Some((name.to_string(), None, None));
    while let Some((start_name, start_type, start_id)) = start.take() {
        let out = aws
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .start_record_name(start_name)
            .set_start_record_type(start_type)
            .set_start_record_identifier(start_id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListResourceRecordSets", &resource, &e))?;
        let mut past_name = false;
        for r in out.resource_record_sets() {
            let rname = crate::config::normalize_record_name(&unescape(r.name()));
            if rname != name {
                // Listing is ordered by name: once past ours, we are done.
                past_name = true;
                break;
            }
            records.push(from_sdk(r, rname));
        }
        if out.is_truncated() && !past_name {
            if let Some(next) = out.next_record_name() {
                start = Some((
                    next.to_string(),
                    out.next_record_type().cloned(),
                    out.next_record_identifier().map(str::to_string),
                ));
            }
        }
    }
    Ok(DnsState {
        zone_id: zone_id.to_string(),
        records,
    })
}

/// Every record set of a zone, following pagination (300 per page): cheaper than one read per
/// record when a zone holds the records of several clusters.
pub async fn read_zone(aws: &AwsClients, zone_id: &str) -> Result<Vec<RecordSet>, AwsError> {
    let resource = format!("hosted zone {zone_id}");
    let mut records = Vec::new();
    let mut start: Option<(String, Option<RrType>, Option<String>)> = None;
    loop {
        let mut req = aws
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(zone_id);
        if let Some((name, rtype, id)) = start.take() {
            req = req
                .start_record_name(name)
                .set_start_record_type(rtype)
                .set_start_record_identifier(id);
        }
        let out = req
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListResourceRecordSets", &resource, &e))?;
        for r in out.resource_record_sets() {
            let name = crate::config::normalize_record_name(&unescape(r.name()));
            records.push(from_sdk(r, name));
        }
        match (out.is_truncated(), out.next_record_name()) {
            (true, Some(next)) => {
                start = Some((
                    next.to_string(),
                    out.next_record_type().cloned(),
                    out.next_record_identifier().map(str::to_string),
                ))
            }
            _ => break,
        }
    }
    Ok(records)
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

fn from_sdk(r: &ResourceRecordSet, name: String) -> RecordSet {
    RecordSet {
        name,
        rtype: r.r#type().as_str().to_string(),
        set_identifier: r.set_identifier().map(str::to_string),
        failover: r.failover().map(|f| f.as_str().to_string()),
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
        .set_failover(r.failover.as_deref().map(ResourceRecordSetFailover::from))
        .set_ttl(r.ttl)
        .set_resource_records(Some(records))
        .set_health_check_id(r.health_check_id.clone())
        .set_multi_value_answer(r.multivalue.then_some(true))
        .build()
        .map_err(|e| e.to_string())
}

/// Apply DELETEs (records exactly as read) and UPSERTs to one zone in one atomic
/// ChangeResourceRecordSets call.
pub async fn change(
    aws: &AwsClients,
    zone_id: &str,
    deletes: &[RecordSet],
    upserts: &[RecordSet],
    comment: &str,
) -> Result<(), AwsError> {
    let resource = format!("hosted zone {zone_id}");
    let bad = |e: String| AwsError::new("ChangeResourceRecordSets", &resource, None, e);
    let changes = deletes
        .iter()
        .map(|r| (ChangeAction::Delete, r))
        .chain(upserts.iter().map(|r| (ChangeAction::Upsert, r)))
        .map(|(action, r)| {
            Change::builder()
                .action(action)
                .resource_record_set(to_sdk(r)?)
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
    aws.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ChangeResourceRecordSets", &resource, &e))?;
    Ok(())
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
