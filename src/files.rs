//! Open files: every connection (Patroni polls, AWS calls, `serve`'s clients) takes a file
//! descriptor, and the process has a limit (1,024 in Lambda). At start the soft limit is
//! raised to the hard one; after a reserve, Patroni polls get half of what is left and
//! `serve`'s front door the other half, so a flood of clients never starves the polls and a
//! mass of hung nodes never starves the door.

/// Descriptors kept for everything else: AWS connections, logs, files.
pub const RESERVED: u64 = 128;
/// No more in flight than this, whatever the limit.
const MOST: u64 = 4096;

/// Raise the soft limit on open files to the hard one (best effort; Lambda's are equal).
pub fn raise_limit() {
    if let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE)
        && soft < hard
    {
        let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard);
    }
}

/// The soft limit on open files now (1,024 when it cannot be read).
pub fn limit() -> u64 {
    rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Half of what the limit leaves after [`RESERVED`]: the Patroni polls' share, and the front
/// door's (at least 16, at most 4,096).
pub fn share() -> usize {
    let half = limit().saturating_sub(RESERVED) / 2;
    usize::try_from(half.clamp(16, MOST)).unwrap_or(16)
}
