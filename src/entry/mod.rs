//! The entry points, each thin over the one engine: the CLI ([`cli`]), the Lambda
//! ([`lambda`]), the service ([`serve`]) and the webhook sender ([`notify`]), plus log setup.

pub mod cli;
pub mod lambda;
pub mod logging;
pub mod notify;
pub mod serve;
pub mod service;
