//! Running the CLI binary as a user does, for the CLI tests: its output, and config files
//! that remove themselves.

#![allow(dead_code)]

use std::process::Output;

use tokio::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_patroni-router");

pub async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("ROUTER_CONFIG")
        .env_remove("ROUTER_CONFIG_FILE");
    // An empty value removes the variable.
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    cmd.output().await.expect("run patroni-router")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn write_config(text: &str) -> tempfile_path::TempPath {
    tempfile_path::TempPath::with(text)
}

/// A config file removed when dropped (no extra crate for one temp file).
mod tempfile_path {
    pub struct TempPath(pub std::path::PathBuf);
    impl TempPath {
        pub fn with(text: &str) -> TempPath {
            let p =
                std::env::temp_dir().join(format!("{}.json", crate::common::unique("router-cli-")));
            std::fs::write(&p, text).expect("write temp config");
            TempPath(p)
        }
        pub fn arg(&self) -> &str {
            self.0.to_str().expect("utf-8 temp path")
        }
    }
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
