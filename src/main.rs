// The async state machines of the entry points nest deeply (SDK calls inside reconcile).
#![recursion_limit = "256"]

use std::process::ExitCode;

/// One binary, two faces: an AWS Lambda when the Lambda runtime API is present, a CLI otherwise.
/// The Lambda runs on one thread (a function has a fraction of a vCPU at its memory size, and
/// one thread spares the cross-thread wake-ups: a third less CPU for a 1,000-cluster run); the
/// CLI's `watch` and `serve` use every core.
fn main() -> ExitCode {
    let lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let mut builder = match lambda {
        true => tokio::runtime::Builder::new_current_thread(),
        false => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("patroni-router: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        if lambda {
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
    })
}
