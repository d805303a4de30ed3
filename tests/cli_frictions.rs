//! What a new user meets first, one test per friction found trying the binary: usage errors
//! exit 1 as documented, messages say what failed and what to do once (no debug structures,
//! no cause repeated, no colour codes in a pipe), two nodes with one address are refused.

mod common;

use common::cli::*;

/// A config whose one node and AWS are unreachable (port 1 on loopback refuses at once).
const UNREACHABLE: &str = r#"{"clusters": [{"scope": "pgha",
    "nodes": [{"name": "pg1", "api_url": "http://127.0.0.1:1", "address": "10.0.1.10", "instance_id": "i-0aaa"}],
    "target_group": {"arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg/0123456789abcdef", "port": 5432},
    "dns": {"hosted_zone_id": "Z0123", "record_name": "db.example.internal."}}]}"#;

/// No credentials, no profile, no instance metadata.
const NO_CREDENTIALS: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", ""),
    ("AWS_SECRET_ACCESS_KEY", ""),
    ("AWS_PROFILE", "none-such-profile"),
    ("AWS_CONFIG_FILE", "/nonexistent"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_REGION", "eu-west-1"),
];

#[tokio::test]
async fn usage_errors_exit_1_and_help_exits_0() {
    for args in [
        &[][..],
        &["--bogus"],
        &["watch", "--interval", "5"],
        &["serve", "--listen", "nonsense"],
        &["watch", "--interval", "500000000000years"],
        &["serve", "--header-timeout", "0s"],
    ] {
        let o = run(args, &[]).await;
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty(), "{args:?} says why");
    }
    let o = run(&["--help"], &[]).await;
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Usage"));
}

#[tokio::test]
async fn output_has_help_text_and_notify_says_what_node_must_match() {
    let o = run(&["plan", "--help"], &[]).await;
    let help = stdout(&o);
    let line = help
        .lines()
        .find(|l| l.contains("--output"))
        .unwrap_or_default();
    assert!(line.len() > "  -o, --output <OUTPUT>".len() + 5, "{help}");
    let o = run(&["notify", "--help"], &[]).await;
    assert!(stdout(&o).contains("member name"), "{}", stdout(&o));
}

#[tokio::test]
async fn without_credentials_the_error_is_short_and_says_what_to_set() {
    let cfg = write_config(UNREACHABLE);
    let mut env = NO_CREDENTIALS.to_vec();
    env.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:1"));
    let o = run(&["plan", "--config", cfg.arg()], &env).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let text = stdout(&o);
    let error = text
        .lines()
        .find(|l| l.contains("error:"))
        .unwrap_or_default();
    assert!(error.contains("AWS_PROFILE"), "{text}");
    assert!(error.len() < 400, "{} characters: {error}", error.len());
    assert!(
        !text.contains("StatusCode") && !text.contains("Response {"),
        "{text}"
    );
}

#[tokio::test]
async fn without_a_region_the_error_says_to_set_one() {
    let cfg = write_config(UNREACHABLE);
    let mut env: Vec<(&str, &str)> = NO_CREDENTIALS
        .iter()
        .filter(|(k, _)| *k != "AWS_REGION")
        .copied()
        .collect();
    env.extend([
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "y"),
        ("AWS_REGION", ""),
        ("AWS_DEFAULT_REGION", ""),
        ("AWS_ENDPOINT_URL", ""),
    ]);
    let o = run(&["plan", "--config", cfg.arg()], &env).await;
    let text = stdout(&o);
    assert!(text.contains("AWS_REGION"), "{text}{}", stderr(&o));
    assert!(
        !text.contains("dispatch failure: other: missing signing region"),
        "{text}"
    );
}

#[tokio::test]
async fn causes_are_not_repeated() {
    let o = run(&["plan", "--config", "/nonexistent/router.json"], &[]).await;
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let cfg = write_config(UNREACHABLE);
    let o = run(
        &["serve", "--config", cfg.arg(), "--listen", &addr],
        &[("ROUTER_WEBHOOK_SECRET", "0123456789abcdef0123")],
    )
    .await;
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert_eq!(e.matches("Address already in use").count(), 1, "{e}");
}

#[tokio::test]
async fn config_errors_name_the_file_and_arns_get_the_real_reason() {
    let cfg = write_config(&UNREACHABLE.replace(
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg/0123456789abcdef",
        "arn:aws:elb:eu-west-1:pg",
    ));
    let o = run(&["plan", "--config", cfg.arg()], &[]).await;
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(e.contains(cfg.arg()), "the file is named: {e}");
    assert!(
        !e.contains("must start with arn:aws") && e.contains("elasticloadbalancing"),
        "{e}"
    );
}

#[tokio::test]
async fn two_nodes_with_one_address_are_refused_naming_both() {
    let cfg = write_config(&UNREACHABLE.replace(
        r#""instance_id": "i-0aaa"}]"#,
        r#""instance_id": "i-0aaa"}, {"name": "pg2", "api_url": "http://127.0.0.1:2", "address": "10.0.1.10"}]"#,
    ));
    let o = run(&["reconcile", "--config", cfg.arg()], &[]).await;
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("nodes[1].address") && e.contains("\"pg1\""),
        "{e}"
    );
}

#[tokio::test]
async fn logs_in_a_pipe_have_no_colour_codes_and_plan_says_why_nobody_answered() {
    let cfg = write_config(UNREACHABLE);
    let env = [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "y"),
        ("AWS_REGION", "eu-west-1"),
    ];
    let o = run(&["plan", "-v", "--config", cfg.arg()], &env).await;
    assert!(!stderr(&o).contains('\u{1b}'), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("no node answered /cluster")
            && text.contains("pg1: connection failed: Connection refused"),
        "{text}"
    );
    assert!(
        text.contains("decided in"),
        "the decision's own time is shown: {text}"
    );
}

#[tokio::test]
async fn notify_to_a_closed_port_says_connection_refused() {
    let o = run(
        &[
            "notify",
            "--url",
            "http://127.0.0.1:1/",
            "--node",
            "pg1",
            "--attempts",
            "1",
            "on_role_change",
            "primary",
            "pgha",
        ],
        &[("ROUTER_WEBHOOK_SECRET", "0123456789abcdef0123")],
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).to_lowercase().contains("connection refused"),
        "{}",
        stderr(&o)
    );
}
