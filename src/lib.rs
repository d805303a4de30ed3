//! patroni-router: routes an AWS NLB target group and Route 53 records to the current
//! Patroni primary. Functional core (`decide`, `plan`) over plain data, thin adapters at the
//! edge (`patroni::client`, `aws`), thin entry points (`cli`, `lambda`, `serve`) over one `reconcile`.

pub mod aws;
pub mod cli;
pub mod config;
pub mod decide;
pub mod drift;
pub mod emf;
pub mod error_chain;
pub mod lambda;
pub mod logging;
pub mod notify;
pub mod patroni;
pub mod plan;
pub mod reconcile;
pub mod report;
pub mod serve;
pub mod webhook;

#[cfg(test)]
pub(crate) mod testkit;
