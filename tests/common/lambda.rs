//! The Lambda runtime harness: `cargo lambda watch --only-lambda-apis` (the Runtime API
//! emulator) and our binary running against it as in AWS, invoked with `cargo lambda invoke`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use super::unique;

/// The test secret the README documents for the sample events.
pub const TEST_SECRET: &str = "patroni-router-test-secret-0123456789";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn cargo_lambda() -> PathBuf {
    let p = std::env::var_os("CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/cargo-lambda"));
    assert!(
        p.exists(),
        "{} not found: run `make venv` (cargo-lambda comes from PyPI) or set CARGO_LAMBDA",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub async fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

pub struct Lambda {
    pub port: u16,
    _emulator: Child,
    _function: Child,
    /// The function's logs (stderr), to check what they do and do not say.
    pub log: PathBuf,
    /// The function's stdout: CloudWatch EMF metric lines.
    pub metrics: PathBuf,
}

impl Drop for Lambda {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.metrics);
    }
}

impl Lambda {
    pub async fn start(config: &str) -> Lambda {
        let port = free_port();
        let emulator = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start cargo lambda watch");
        wait_for_port(port).await;
        let log = std::env::temp_dir().join(format!("{}.log", unique("lambda-")));
        let log_file = std::fs::File::create(&log).expect("log file");
        let metrics = std::env::temp_dir().join(format!("{}.emf", unique("lambda-")));
        let metrics_file = std::fs::File::create(&metrics).expect("metrics file");
        let function = Command::new(env!("CARGO_BIN_EXE_patroni-router"))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("ROUTER_CONFIG", config)
            .env("ROUTER_WEBHOOK_SECRET", TEST_SECRET)
            .env_remove("ROUTER_CONFIG_FILE")
            .stdout(Stdio::from(metrics_file))
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .expect("start the function");
        Lambda {
            port,
            _emulator: emulator,
            _function: function,
            log,
            metrics,
        }
    }

    /// `cargo lambda invoke --data-file` with this payload; returns the function's answer.
    pub async fn invoke(&self, payload: &Value) -> Value {
        let file = std::env::temp_dir().join(format!("{}.json", unique("event-")));
        std::fs::write(&file, payload.to_string()).expect("write event");
        let out = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(&file)
            .arg("_")
            .output()
            .await
            .expect("cargo lambda invoke");
        let _ = std::fs::remove_file(&file);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "invoke failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {stdout}"))
    }
}
