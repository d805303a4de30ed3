//! Patroni's `GET /history`: each timeline switch as `[timeline, lsn, reason, timestamp,
//! new_leader]` (older versions leave out the last one or two). The timestamp of the switch
//! *to* a timeline is its promotion time: the start of a failover's routing lag.

use serde::Deserialize;
use serde::de::IgnoredAny;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::PollError;

/// One timeline switch: timeline `timeline` ended, `new_leader` took over at `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub timeline: u64,
    /// Why it ended, as PostgreSQL wrote it.
    pub reason: Option<String>,
    /// Unix milliseconds of the switch, when Patroni recorded it.
    pub at_ms: Option<u64>,
    pub new_leader: Option<String>,
}

/// One row as Patroni writes it (a JSON array of mixed types).
#[derive(Deserialize)]
struct Row(
    u64,
    IgnoredAny,
    #[serde(default)] Option<String>,
    #[serde(default)] Option<String>,
    #[serde(default)] Option<String>,
);

/// Unix milliseconds of an RFC 3339 timestamp (Patroni's `isoformat()`), if it is one.
pub fn unix_ms(text: &str) -> Option<u64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Parse a `GET /history` body.
pub fn parse_history(body: &[u8]) -> Result<Vec<Switch>, PollError> {
    let rows: Vec<Row> =
        serde_json::from_slice(body).map_err(|e| PollError::Parse(format!("/history: {e}")))?;
    Ok(rows
        .into_iter()
        .map(|Row(timeline, _, reason, at, leader)| Switch {
            timeline,
            reason,
            at_ms: at.as_deref().and_then(unix_ms),
            new_leader: leader,
        })
        .collect())
}

/// When `timeline` began: the switch that ended the timeline before it.
pub fn promoted_at(history: &[Switch], timeline: u64) -> Option<u64> {
    let previous = timeline.checked_sub(1)?;
    history.iter().find(|s| s.timeline == previous)?.at_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_every_patroni_version_parse_and_the_promotion_time_is_found() {
        let body = br#"[[1, 50331808, "no recovery target specified", "2026-11-25T17:05:12.250+00:00", "pg2"],
                        [2, 67109024, "no recovery target specified", "2026-11-25T18:00:00+01:00"],
                        [3, 83886240, "no recovery target specified"]]"#;
        let h = parse_history(body).expect("parses");
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].new_leader.as_deref(), Some("pg2"));
        assert_eq!(promoted_at(&h, 2), Some(1_795_626_312_250));
        assert_eq!(
            promoted_at(&h, 3),
            Some(1_795_626_000_000),
            "offsets are honoured"
        );
        assert_eq!(promoted_at(&h, 4), None, "no timestamp recorded");
        assert_eq!(promoted_at(&h, 1), None, "timeline 1 was never promoted to");
        assert!(parse_history(b"{}").is_err());
        assert_eq!(parse_history(b"[]").map(|h| h.len()), Ok(0));
    }
}
