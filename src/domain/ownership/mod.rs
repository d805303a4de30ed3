//! Ownership markers: what the router writes beside everything it routes, so that it never
//! changes what another owner holds, and so that what it last routed survives the process.
//!
//! - A record name carries a TXT record at the same name (read with the record itself, and
//!   written in the same atomic change batch): `"heritage=patroni-router owner=… scope=… db=…
//!   tl=… leader=… sets=… at=…"`.
//! - A target group carries tags: `patroni-router:owner` (`owner=… scope=… db=…`) and one
//!   `patroni-router:tl:<timeline>` = leader per routed timeline (a grow-only set: writers
//!   never erase a newer timeline, so the largest key is the fence whatever the interleaving).
//!
//! The owner id is the config's `owner_id`, or by default one derived from the database the
//! cluster is: `db-<PostgreSQL system identifier>` — every router of the same database (the
//! Lambda, `serve`, a DR region's router, a person running `reconcile`) is the same owner,
//! and a router of any other database pointed at the same name by mistake is not.

use std::collections::BTreeMap;

use serde::Serialize;

pub const HERITAGE: &str = "patroni-router";
pub const TAG_OWNER: &str = "patroni-router:owner";
pub const TAG_TIMELINE: &str = "patroni-router:tl:";
/// Timeline tags kept on a target group (AWS allows 50 tags; older ones are pruned).
pub const TIMELINE_TAGS_KEPT: usize = 3;

/// Who routes: the owner id, and the cluster and database it routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub id: String,
    pub scope: String,
    pub database: Option<String>,
}

impl Owner {
    /// The configured owner id, else one derived from the database (`None` when neither is
    /// known: nothing can be marked then).
    pub fn of(owner_id: Option<&str>, scope: &str, database: Option<&str>) -> Option<Owner> {
        let id = match (owner_id, database) {
            (Some(id), _) => id.to_string(),
            (None, Some(db)) => format!("db-{db}"),
            (None, None) => return None,
        };
        Some(Owner {
            id,
            scope: scope.to_string(),
            database: database.map(str::to_string),
        })
    }
}

/// What a marker says: the owner, and the routing it was written for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Marker {
    pub owner: String,
    pub scope: String,
    pub database: Option<String>,
    /// The timeline and leader routed when it was written (the fence).
    pub timeline: Option<u64>,
    pub leader: Option<String>,
    /// Multivalue records the router made at the name (their SetIdentifiers).
    pub sets: Vec<String>,
    /// When it was written (Unix ms): every write differs, so a write is a compare-and-set.
    pub at_ms: u64,
}

/// Whose a resource is, as read from AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Claim {
    /// No marker: adopted (marked) on the router's first write.
    Unmarked,
    Ours(Marker),
    /// Marked by another owner: never changed.
    Foreign {
        owner: String,
        scope: String,
    },
}

impl Claim {
    /// Judge a marker against the owner this router is.
    pub fn of(marker: Marker, owner: &Owner) -> Claim {
        if marker.owner == owner.id {
            Claim::Ours(marker)
        } else {
            Claim::Foreign {
                owner: marker.owner,
                scope: marker.scope,
            }
        }
    }
}

/// A TXT value as Route 53 takes it: quoted strings of at most 255 characters each.
fn quote_chunks(text: &str) -> String {
    let chunks: Vec<String> = text
        .as_bytes()
        .chunks(250)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    chunks.join(" ")
}

/// The text of a TXT value: its quoted strings joined (a value without quotes as it is).
fn unquote_chunks(value: &str) -> String {
    let value = value.trim();
    if !value.starts_with('"') {
        return value.to_string();
    }
    value
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect()
}

/// Values are single words: anything but plain characters is %-escaped.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"._:/@-".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn words(text: &str) -> BTreeMap<String, String> {
    text.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), unescape(v)))
        .collect()
}

fn owner_words(m: &Marker) -> String {
    let mut s = format!("owner={} scope={}", escape(&m.owner), escape(&m.scope));
    if let Some(db) = &m.database {
        s.push_str(&format!(" db={}", escape(db)));
    }
    s
}

impl Marker {
    /// A marker written now by `owner` for this routing.
    pub fn new(owner: &Owner, timeline: Option<u64>, leader: Option<&str>, at_ms: u64) -> Marker {
        Marker {
            owner: owner.id.clone(),
            scope: owner.scope.clone(),
            database: owner.database.clone(),
            timeline,
            leader: leader.map(str::to_string),
            sets: Vec::new(),
            at_ms,
        }
    }

    /// The TXT record's value (quoted, as Route 53 holds TXT values).
    pub fn to_txt(&self) -> String {
        let mut s = format!("heritage={HERITAGE} {}", owner_words(self));
        if let Some(tl) = self.timeline {
            s.push_str(&format!(" tl={tl}"));
        }
        if let Some(l) = &self.leader {
            s.push_str(&format!(" leader={}", escape(l)));
        }
        if !self.sets.is_empty() {
            let sets: Vec<String> = self.sets.iter().map(|s| escape(s)).collect();
            s.push_str(&format!(" sets={}", sets.join(",")));
        }
        quote_chunks(&format!("{s} at={}", self.at_ms))
    }

    /// A TXT value that is a router's marker, or `None` for any other TXT.
    pub fn from_txt(value: &str) -> Option<Marker> {
        let w = words(&unquote_chunks(value));
        if w.get("heritage").map(String::as_str) != Some(HERITAGE) {
            return None;
        }
        Some(Marker {
            owner: w.get("owner")?.clone(),
            scope: w.get("scope").cloned().unwrap_or_default(),
            database: w.get("db").cloned(),
            timeline: w.get("tl").and_then(|t| t.parse().ok()),
            leader: w.get("leader").cloned(),
            sets: w
                .get("sets")
                .map(|s| {
                    s.split(',')
                        .map(unescape)
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            at_ms: w.get("at").and_then(|t| t.parse().ok()).unwrap_or(0),
        })
    }

    /// The tags that mark a target group: the owner, and this marker's timeline.
    pub fn to_tags(&self) -> Vec<(String, String)> {
        let mut tags = vec![(TAG_OWNER.to_string(), owner_words(self))];
        if let (Some(tl), Some(leader)) = (self.timeline, &self.leader) {
            tags.push((timeline_tag(tl), leader.clone()));
        }
        tags
    }

    /// A target group's marker from its tags: the owner tag, and the newest timeline tag as
    /// the fence. `None` without an owner tag.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<Marker> {
        let w = words(tags.get(TAG_OWNER)?);
        let newest = tags
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(TAG_TIMELINE)?.parse::<u64>().ok()?, v)))
            .max_by_key(|(tl, _)| *tl);
        Some(Marker {
            owner: w.get("owner")?.clone(),
            scope: w.get("scope").cloned().unwrap_or_default(),
            database: w.get("db").cloned(),
            timeline: newest.map(|(tl, _)| tl),
            leader: newest.map(|(_, l)| l.clone()),
            sets: Vec::new(),
            at_ms: 0,
        })
    }
}

/// The tag key of a timeline: zero-padded so keys sort as numbers.
pub fn timeline_tag(tl: u64) -> String {
    format!("{TAG_TIMELINE}{tl:020}")
}

/// Timeline tags beyond the newest [`TIMELINE_TAGS_KEPT`], oldest first: safe to remove.
pub fn prunable_timeline_tags(tags: &BTreeMap<String, String>) -> Vec<String> {
    let timelines: Vec<&String> = tags
        .keys()
        .filter(|k| k.starts_with(TAG_TIMELINE))
        .collect();
    let excess = timelines.len().saturating_sub(TIMELINE_TAGS_KEPT);
    timelines.into_iter().take(excess).cloned().collect()
}

#[cfg(test)]
mod tests;
