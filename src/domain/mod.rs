//! The pure core: typed data and the functions that decide and plan over it. Nothing here
//! does I/O, reads a clock or the environment, so every rule is a unit (or property) test.
//!
//! - [`patroni`]: what Patroni's REST API answers, as typed values, and its parsers;
//! - [`aws`]: the routing AWS holds (targets, records), as typed values;
//! - [`decide`]: who the primary is, one small function per rule;
//! - [`plan`]: what must change in target groups and records;
//! - [`drift`]: the target-group settings each strategy needs;
//! - [`report`]: what a run did (data and its text rendering);
//! - [`emf`]: a run's metrics as CloudWatch Embedded Metric Format lines.

/// A string-valued enum as an external system sends it: known values as variants, anything
/// else kept verbatim in `Other` (a newer Patroni or AWS may send values we do not know; they
/// must round-trip and print as sent, never fail a parse).
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept as sent.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $text => $name::$variant, )+
                    other => $name::Other(other.to_string()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::from(s.as_str()))
            }
        }
    };
}

pub mod aws;
pub mod check;
pub mod decide;
pub mod drift;
pub mod emf;
pub mod fence;
pub mod ownership;
pub mod patroni;
pub mod plan;
pub mod report;
