//! Rule 1: a node that answers as another scope or member is not one of ours, and when every
//! answer is such a node nothing is decided.

use super::{Evidence, Refusal, no_primary};
use crate::domain::patroni::ClusterView;

/// Rule 1: a node answering as another scope or member is not one of ours.
pub(in crate::domain::decide) fn find_misconfigured(ev: &mut Evidence<'_>) {
    let scope = &ev.cluster.scope;
    for o in &ev.obs {
        if let Ok(s) = &o.patroni
            && (s.patroni.scope != *scope || s.patroni.name != o.name)
        {
            ev.misconfigured.insert(
                o.name.clone(),
                format!(
                    "its /patroni answers as member {:?} of scope {:?}, configured as {:?} of {:?}",
                    s.patroni.name, s.patroni.scope, o.name, scope
                ),
            );
            continue;
        }
        if let Ok(ClusterView {
            scope: Some(theirs),
            ..
        }) = &o.cluster
            && theirs != scope
        {
            ev.misconfigured.insert(
                o.name.clone(),
                format!("its /cluster is of scope {theirs:?}, configured in {scope:?}"),
            );
        }
    }
}

/// Rule 1, whole: nodes answered, but every one of them as another scope or member — a
/// wrong config or `api_url`s pointing at another cluster. Nothing is decided from it.
pub(in crate::domain::decide) fn every_answer_misconfigured(ev: &Evidence<'_>) -> Option<Refusal> {
    let answered: Vec<&str> = ev
        .obs
        .iter()
        .filter(|o| o.patroni.is_ok() || o.cluster.is_ok())
        .map(|o| o.name.as_str())
        .collect();
    if answered.is_empty() || answered.iter().any(|n| !ev.misconfigured.contains_key(*n)) {
        return None;
    }
    let why: Vec<String> = ev
        .misconfigured
        .iter()
        .map(|(n, why)| format!("{n}: {why}"))
        .collect();
    Some(no_primary(format!(
        "every node that answered is misconfigured ({}): check `scope`, the node names and \
         their `api_url`s; routing unchanged",
        why.join("; ")
    )))
}
