//! patroni-router: routes AWS NLB target groups and Route 53 records to the current Patroni
//! primary. The layout is the architecture:
//!
//! - [`domain`]: the pure core — typed Patroni answers and AWS routing, `decide` (who is the
//!   primary), `plan` (what must change), drift, the report, metrics documents;
//! - [`config`]: the configuration, parsed strictly and validated into typed values;
//! - [`engine`]: the one reconcile path (observe, decide, plan, apply, report), talking to
//!   the world only through the ports in [`adapters`];
//! - [`adapters`]: the ports (Patroni, ELBv2, Route 53) and their adapters (HTTP, the AWS SDK,
//!   an in-memory AWS for tests), with the batching AWS needs;
//! - [`webhook`]: the Patroni callback's wire format, signing and verification;
//! - [`entry`]: thin entry points over the engine — the CLI, the Lambda, `serve`, `notify`;
//! - [`clock`], [`error_chain`]: the one clock, and readable error chains.

pub mod adapters;
pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod entry;
pub mod error_chain;
pub mod files;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod webhook;
