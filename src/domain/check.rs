//! The preflight's report (`patroni-router check`, the Lambda's `{"action": "check"}`): one
//! line per dependency — the config, each Patroni node, each AWS API the router calls, each
//! target group and hosted zone — ok, or what failed and the likely fix. Pure: what a failure
//! means for a deployment is decided here, from what the engine observed.

use std::fmt::Write as _;

use serde::Serialize;

use crate::domain::patroni::PollError;
use crate::domain::report::AwsError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Failed,
    /// Not tried (e.g. writes: the check changes nothing).
    Skipped,
}

/// One dependency and how it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. `patroni pgha/pg1 (http://10.0.1.10:8008)`.
    pub dependency: String,
    pub status: Status,
    /// What was seen, or what failed.
    pub detail: String,
    /// The likely fix, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(dependency: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            dependency: dependency.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn failed(dependency: impl Into<String>, detail: impl Into<String>, fix: &str) -> Check {
        Check {
            dependency: dependency.into(),
            status: Status::Failed,
            detail: detail.into(),
            fix: Some(fix.to_string()),
        }
    }

    pub fn skipped(dependency: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            dependency: dependency.into(),
            status: Status::Skipped,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A failed AWS call: AWS's answer, and the fix its code (or its absence) points to.
    pub fn aws(dependency: impl Into<String>, e: &AwsError) -> Check {
        let fix = aws_fix(e);
        Check::failed(dependency, format!("{}: {}", e.operation, e.message), fix)
    }

    /// A Patroni node that could not be asked.
    pub fn patroni(dependency: impl Into<String>, e: &PollError) -> Check {
        Check::failed(dependency, e.to_string(), patroni_fix(e))
    }
}

/// What to do about a failed AWS call.
fn aws_fix(e: &AwsError) -> &'static str {
    let code = e.code.as_deref().unwrap_or_default();
    match code {
        c if c.contains("AccessDenied") || c.contains("Unauthorized") => {
            "IAM: grant the router's role this action on this resource (the template and the \
             Terraform module do; a permissions boundary or SCP may deny it)"
        }
        "TargetGroupNotFound" | "ValidationError" => {
            "the target group does not exist in this account and region: check the ARN, and \
             that AWS_REGION (the function's region) is the target group's"
        }
        "NoSuchHostedZone" | "InvalidInput" => {
            "the hosted zone does not exist in this account: check `dns.hosted_zone_id`"
        }
        "" if e.message.contains("credentials") => {
            "credentials: run with a role (Lambda, ECS task, EC2 instance) or set AWS_PROFILE"
        }
        "" if e.message.contains("region") => "region: set AWS_REGION",
        "" => {
            "network: the API did not answer from here — give the subnets a NAT gateway, or \
             VPC endpoints (ELBv2: com.amazonaws.REGION.elasticloadbalancing; Route 53 has \
             none: NAT), and check `aws.endpoint_url` if set"
        }
        _ => "read AWS's message above",
    }
}

/// What to do about a Patroni node that could not be asked.
fn patroni_fix(e: &PollError) -> &'static str {
    let text = e.to_string().to_ascii_lowercase();
    match e {
        PollError::Timeout(_) => {
            "network: packets to the node's REST port get no answer — its security group or \
             NACL must admit the router's (port 8008 by default), and a route must exist"
        }
        PollError::Connect(_) if text.contains("dns") || text.contains("resolve") => {
            "DNS: the name in `api_url` does not resolve from here (VPC DNS, a private zone \
             association), or use the node's IP"
        }
        PollError::Connect(_) if text.contains("certificate") || text.contains("tls") => {
            "TLS: the node's certificate is not trusted with `patroni.tls.ca_file`, or the \
             node wants a client certificate (`cert_file`/`key_file`)"
        }
        PollError::Connect(_) => {
            "the connection was refused: is Patroni's REST API listening on that address and \
             port (`restapi.listen`), and is `api_url` right?"
        }
        PollError::Status(401 | 403) => {
            "Patroni's REST API wants authentication the router does not send: allow \
             unauthenticated GET (Patroni's `restapi.authentication` only guards writes) or \
             use client certificates"
        }
        PollError::Status(_) | PollError::Parse(_) | PollError::TooLarge(_) => {
            "not Patroni's REST API at this URL: check `api_url` (scheme, host, port 8008)"
        }
        PollError::Other(_) => "check `api_url` and the network path to the node",
    }
}

/// Every check of one preflight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl CheckReport {
    pub fn new(checks: Vec<Check>) -> CheckReport {
        CheckReport {
            ok: checks.iter().all(|c| c.status != Status::Failed),
            checks,
        }
    }

    /// One line per dependency (and the fix under a failure), then a summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let tag = match c.status {
                Status::Ok => "ok  ",
                Status::Failed => "FAIL",
                Status::Skipped => "skip",
            };
            let _ = writeln!(out, "{tag}  {}: {}", c.dependency, c.detail);
            if let Some(fix) = &c.fix {
                let _ = writeln!(out, "      fix: {fix}");
            }
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Failed)
            .count();
        let _ = match failed {
            0 => writeln!(out, "all {} checks passed", self.checks.len()),
            n => writeln!(out, "{n} of {} checks failed", self.checks.len()),
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_names_its_fix() {
        let denied = AwsError::new(
            "DescribeTargetHealth",
            "arn",
            Some("AccessDenied"),
            "no".into(),
        );
        assert!(
            Check::aws("tg", &denied)
                .fix
                .unwrap_or_default()
                .contains("IAM")
        );
        let gone = AwsError::new(
            "DescribeTargetGroups",
            "arn",
            Some("TargetGroupNotFound"),
            "x".into(),
        );
        assert!(
            Check::aws("tg", &gone)
                .fix
                .unwrap_or_default()
                .contains("region")
        );
        let silent = AwsError::new(
            "ListResourceRecordSets",
            "Z1",
            None,
            "AWS did not answer".into(),
        );
        assert!(
            Check::aws("zone", &silent)
                .fix
                .unwrap_or_default()
                .contains("NAT")
        );
        let refused = PollError::Connect("Connection refused (os error 111)".into());
        assert!(
            Check::patroni("pg1", &refused)
                .fix
                .unwrap_or_default()
                .contains("listening")
        );
        let slow = PollError::Timeout("no answer within 2s".into());
        assert!(
            Check::patroni("pg1", &slow)
                .fix
                .unwrap_or_default()
                .contains("security group")
        );
    }

    #[test]
    fn the_text_has_one_line_per_dependency_and_a_summary() {
        let r = CheckReport::new(vec![
            Check::ok("config", "1 cluster"),
            Check::patroni("patroni pgha/pg1", &PollError::Status(404)),
            Check::skipped("writes", "not tried"),
        ]);
        assert!(!r.ok);
        let text = r.to_text();
        assert!(text.starts_with("ok    config: 1 cluster\nFAIL  patroni pgha/pg1: unexpected HTTP status 404\n      fix: not Patroni"), "{text}");
        assert!(text.ends_with("1 of 3 checks failed\n"), "{text}");
    }
}
