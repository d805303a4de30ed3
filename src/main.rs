// The async state machines of the entry points nest deeply (SDK calls inside reconcile).
#![recursion_limit = "256"]

use std::process::ExitCode;

/// One binary, two faces: an AWS Lambda when the Lambda runtime API is present, a CLI otherwise.
#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        match Box::pin(patroni_router::entry::lambda::run()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("patroni-router lambda: {e}");
                ExitCode::FAILURE
            }
        }
    } else {
        Box::pin(patroni_router::entry::cli::main()).await
    }
}
