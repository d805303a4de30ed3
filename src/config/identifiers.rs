//! Checks of single identifiers a config names: owner ids, URLs, target group ARNs, hosted
//! zone ids and DNS names. Each takes the path of its field, so the error names it.

use super::validate::{Checked, invalid};

/// Markers are `key=value` words: an owner id is one word of plain characters.
pub(super) fn owner_id(owner: &str) -> Checked<()> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._:/@-".contains(c);
    if owner.is_empty() || owner.len() > 64 || !owner.chars().all(plain) {
        return invalid(
            "owner_id",
            format!(
                "{owner:?}: use 1..=64 letters, digits and . _ : / @ - (e.g. \"prod-eu-west-1\")"
            ),
        );
    }
    Ok(())
}

pub(super) fn api_url(url: &str, field: &str) -> Checked<()> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return invalid(
                field,
                format!("{url:?} is not a URL ({e}): use e.g. \"http://10.0.1.10:8008\""),
            );
        }
    };
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return invalid(
            field,
            format!("{url:?} must be an http:// or https:// URL with a host"),
        );
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return invalid(
            field,
            format!("{url:?}: give the REST API base URL without query or fragment"),
        );
    }
    Ok(())
}

/// `arn:<partition>:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>`
pub(super) fn target_group_arn(arn: &str, field: &str) -> Checked<()> {
    let bad = |why: &str| {
        invalid(
            field,
            format!(
                "{arn:?} is not a target group ARN ({why}); expected \
                 arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID"
            ),
        )
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.first() != Some(&"arn") || !parts.get(1).is_some_and(|p| p.starts_with("aws")) {
        return bad("it must start with arn:aws");
    }
    if parts.get(2) != Some(&"elasticloadbalancing") {
        return bad("the service is not elasticloadbalancing");
    }
    if parts.len() != 6 || parts[3].is_empty() || parts[4].is_empty() {
        return bad("region, account or resource missing");
    }
    let resource: Vec<&str> = parts[5].split('/').collect();
    if resource.len() != 3
        || resource[0] != "targetgroup"
        || resource[1].is_empty()
        || resource[2].is_empty()
    {
        return bad("the resource is not targetgroup/NAME/ID");
    }
    Ok(())
}

/// `Z0123456789ABC`, also accepted with the `/hostedzone/` prefix AWS prints; the bare id.
pub(super) fn hosted_zone_id<'a>(id: &'a str, field: &str) -> Checked<&'a str> {
    let zone = id
        .trim_start_matches("/hostedzone/")
        .trim_start_matches("hostedzone/");
    if zone.is_empty() || !zone.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return invalid(
            field,
            format!("{id:?} is not a hosted zone id (like \"Z0123456789ABC\")"),
        );
    }
    Ok(zone)
}

pub(super) fn record_name(name: &str, field: &str) -> Checked<()> {
    let bare = name.trim_end_matches('.');
    let bad = bare.is_empty()
        || bare.len() > 253
        || bare
            .split('.')
            .any(|label| label.is_empty() || label.len() > 63);
    if bad {
        return invalid(
            field,
            format!(
                "{name:?} is not a DNS name: use a name inside the hosted zone, e.g. \"db.example.internal.\""
            ),
        );
    }
    Ok(())
}
