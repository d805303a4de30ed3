//! Sharding: when one function no longer fits an account's clusters, several deployments
//! share one config, each routing the clusters of its shard (`ROUTER_SHARD=i/n`: the clusters
//! whose scope hashes to `i` modulo `n`, FNV-1a, stable across versions and machines). Every
//! cluster belongs to exactly one shard, and each shard takes `1/n` of the configured AWS
//! budget share: the account's budget is one, however many shards spend it.

use super::{Config, ConfigError};

/// Where the shard is read from.
pub const ENV_SHARD: &str = "ROUTER_SHARD";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `i/n` with `0 <= i < n`.
    pub fn parse(text: &str) -> Result<Shard, ConfigError> {
        let bad = || ConfigError::Invalid {
            origin: ENV_SHARD.into(),
            field: ENV_SHARD.into(),
            message: format!(
                "{text:?}: write INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4 for the first of \
                 four shards (or leave it unset: one router for every cluster)"
            ),
        };
        let (i, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// From `ROUTER_SHARD`, if set and not empty.
    pub fn from_env() -> Result<Option<Shard>, ConfigError> {
        match std::env::var(ENV_SHARD) {
            Ok(s) if !s.trim().is_empty() => Shard::parse(&s).map(Some),
            _ => Ok(None),
        }
    }

    /// Does `scope` belong to this shard?
    pub fn owns(&self, scope: &str) -> bool {
        fnv1a(scope.as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }
}

/// FNV-1a, 64 bits: defined by its constants, so every router agrees on every machine.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Config {
    /// Only this shard's clusters, and its part of the AWS budget. A shard with no cluster
    /// is an error naming the fix.
    pub fn only_shard(mut self, shard: Shard) -> Result<Config, ConfigError> {
        let total = self.clusters.len();
        self.clusters.retain(|c| shard.owns(&c.scope));
        if self.clusters.is_empty() {
            return Err(ConfigError::Invalid {
                origin: ENV_SHARD.into(),
                field: ENV_SHARD.into(),
                message: format!(
                    "shard {}/{} holds none of the {total} clusters: use fewer shards",
                    shard.index, shard.count
                ),
            });
        }
        self.aws.budget.share /= f64::from(shard.count);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_or_say_how_to_write_them() {
        assert_eq!(Shard::parse("1/4").ok(), Some(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "a/b", "0/0", "-1/3"] {
            let e = Shard::parse(bad).expect_err(bad).to_string();
            assert!(e.contains("INDEX/COUNT"), "{e}");
        }
    }

    #[test]
    fn every_scope_belongs_to_exactly_one_shard_and_the_spread_is_even() {
        let shards: Vec<Shard> = (0..4).map(|index| Shard { index, count: 4 }).collect();
        let mut per = [0usize; 4];
        for i in 0..10_000 {
            let scope = format!("pg-{i}");
            let owners: Vec<usize> = (0..4).filter(|&s| shards[s].owns(&scope)).collect();
            assert_eq!(owners.len(), 1, "{scope}");
            per[owners[0]] += 1;
        }
        assert!(per.iter().all(|n| (2_300..2_700).contains(n)), "{per:?}");
    }

    #[test]
    fn the_hash_is_fnv1a_as_published() {
        // The reference test vectors: every router, on every machine and version, agrees.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
