//! Validation of the process-wide settings: `patroni`, `webhook` and `aws` (the clusters are
//! checked in [`super::validate`]).

use std::time::Duration;

use super::BudgetSettings;
use super::identifiers::api_url;
use super::raw::RawConfig;
use super::validate::{Checked, invalid};

/// The longest replay window accepted for webhooks.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);
/// The longest verification period accepted.
const MAX_VERIFY_EVERY: Duration = Duration::from_secs(24 * 3600);
/// A bucket's refill above this is a typo (AWS's documented rates are tens a second).
const MAX_PER_SECOND: f64 = 1_000_000.0;

/// Upper bounds of the durations: past them a value is a typo, and a duration that large
/// would overflow the clock's arithmetic (found by review).
fn longest(raw: &RawConfig) -> [(&'static str, Duration, Duration); 6] {
    const MINUTE: Duration = Duration::from_secs(60);
    let (p, w, a) = (&raw.patroni, &raw.webhook, &raw.aws);
    [
        ("patroni.request_timeout", p.request_timeout, MINUTE),
        ("patroni.poll_deadline", p.poll_deadline, MINUTE),
        ("webhook.confirm_interval", w.confirm_interval, MINUTE),
        ("webhook.confirm_timeout", w.confirm_timeout, 15 * MINUTE),
        ("aws.attempt_timeout", a.attempt_timeout, 5 * MINUTE),
        (
            "aws.settings_check_interval",
            a.settings_check_interval,
            MAX_VERIFY_EVERY,
        ),
    ]
}

pub(super) fn settings(raw: &RawConfig) -> Checked<()> {
    for (field, value, max) in longest(raw) {
        if value > max {
            return invalid(
                field,
                format!(
                    "{} is more than the longest accepted, {}",
                    humantime::format_duration(value),
                    humantime::format_duration(max)
                ),
            );
        }
    }
    let p = &raw.patroni;
    if p.request_timeout.is_zero() || p.poll_deadline.is_zero() {
        return invalid(
            "patroni",
            "request_timeout and poll_deadline must be positive durations like \"2s\"",
        );
    }
    if let Some(tls) = &p.tls
        && tls.cert_file.is_some() != tls.key_file.is_some()
    {
        return invalid(
            "patroni.tls",
            "cert_file and key_file go together: set both for a client certificate, or neither",
        );
    }
    let a = &raw.aws;
    if a.attempt_timeout.is_zero() || !(1..=10).contains(&a.max_attempts) {
        return invalid(
            "aws",
            "attempt_timeout must be a positive duration and max_attempts 1..=10",
        );
    }
    if let Some(url) = &a.endpoint_url {
        api_url(url, "aws.endpoint_url")?;
    }
    budget(&a.budget)?;
    if a.verify_every < Duration::from_secs(10) || a.verify_every > MAX_VERIFY_EVERY {
        return invalid(
            "aws.verify_every",
            "must be from \"10s\" (each check costs AWS calls) to \"24h\" (a change made \
             outside is found within it); the default is \"5m\"",
        );
    }
    let w = &raw.webhook;
    if w.confirm_interval.is_zero() || w.max_clock_skew.is_zero() {
        return invalid(
            "webhook",
            "confirm_interval and max_clock_skew must be positive durations like \"250ms\"",
        );
    }
    if w.max_clock_skew > MAX_CLOCK_SKEW {
        return invalid(
            "webhook.max_clock_skew",
            format!(
                "{} is more than {}: a signed callback stays replayable that long; keep the \
                 nodes' clocks in sync (NTP) and the window short (default 5m)",
                humantime::format_duration(w.max_clock_skew),
                humantime::format_duration(MAX_CLOCK_SKEW)
            ),
        );
    }
    if p.max_in_flight == Some(0) {
        return invalid(
            "patroni.max_in_flight",
            "must be at least 1 (leave it out to fit it to the open-files limit)",
        );
    }
    if p.straggler_grace > p.poll_deadline {
        return invalid(
            "patroni.straggler_grace",
            "must not be longer than patroni.poll_deadline (default 100ms)",
        );
    }
    Ok(())
}

/// `aws.budget`: a share in (0, 1], buckets that hold and refill something.
fn budget(b: &BudgetSettings) -> Checked<()> {
    if !(b.share > 0.0 && b.share <= 1.0) {
        return invalid(
            "aws.budget.share",
            "must be more than 0 and at most 1 (the fraction of AWS's limits this router may use, \
             default 0.2)",
        );
    }
    for (name, bucket) in [
        ("elb_describe", b.elb_describe),
        ("elb_modify", b.elb_modify),
        ("route53", b.route53),
    ] {
        if bucket.burst == 0 || !(bucket.per_second > 0.0 && bucket.per_second <= MAX_PER_SECOND) {
            return invalid(
                format!("aws.budget.{name}"),
                "burst must be at least 1 and per_second a number in (0, 1000000] (AWS's \
                 documented limits are the defaults)",
            );
        }
        if bucket.per_second * b.share < 1.0 / 60.0 {
            return invalid(
                format!("aws.budget.{name}.per_second"),
                format!(
                    "{} × share {} is less than one call a minute: the router could not route; \
                     raise per_second or aws.budget.share",
                    bucket.per_second, b.share
                ),
            );
        }
    }
    Ok(())
}
