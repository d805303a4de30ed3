//! Log setup: JSON lines in Lambda (CloudWatch Logs Insights queries them), human text on a
//! terminal. Logs go to stderr so that stdout carries only the report.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `RUST_LOG` wins; otherwise `default_level` for us and quieter AWS SDK internals.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default_level},aws_config=warn,aws_smithy_runtime=warn,aws_sdk_route53=warn,\
             aws_sdk_elasticloadbalancingv2=warn,hyper=warn,reqwest=warn,rustls=warn"
        ))
    });
    // Colours only for a person at a terminal: never escape codes in a file, pipe or journal.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal && format == LogFormat::Text)
        .with_writer(std::io::stderr);
    // try_init: a second init (tests, embedding) keeps the first subscriber instead of panicking.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .without_time() // Lambda stamps every line already.
            .try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}
