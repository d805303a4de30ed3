//! Markers: round trips through TXT values and tags, and who owns what.

use std::collections::BTreeMap;

use super::*;

fn owner() -> Owner {
    Owner::of(None, "pg ha", Some("7712154790783901088")).expect("owner")
}

fn marker() -> Marker {
    let mut m = Marker::new(&owner(), Some(3), Some("pg2"), 1_795_000_000_123);
    m.sets = vec!["pg1".into(), "pg 3".into()];
    m
}

#[test]
fn the_default_owner_is_the_database_and_a_configured_one_wins() {
    assert_eq!(owner().id, "db-7712154790783901088");
    let o = Owner::of(Some("prod"), "pgha", Some("1")).expect("owner");
    assert_eq!(o.id, "prod");
    assert_eq!(
        Owner::of(None, "pgha", None),
        None,
        "nothing to derive it from"
    );
}

#[test]
fn a_marker_round_trips_through_a_txt_value() {
    let m = marker();
    let txt = m.to_txt();
    assert!(
        txt.starts_with("\"heritage=patroni-router owner=db-7712154790783901088 scope=pg%20ha"),
        "{txt}"
    );
    assert_eq!(Marker::from_txt(&txt), Some(m));
    assert_eq!(
        Marker::from_txt("\"v=spf1 -all\""),
        None,
        "other TXT values are not markers"
    );
    assert_eq!(
        Marker::from_txt("\"heritage=external-dns,external-dns/owner=x\""),
        None
    );
}

#[test]
fn long_markers_are_split_into_txt_strings_and_joined_back() {
    let mut m = marker();
    m.sets = (0..60).map(|i| format!("replica-number-{i}")).collect();
    let txt = m.to_txt();
    assert!(txt.matches('"').count() >= 4, "several strings: {txt}");
    assert!(txt.split("\" \"").all(|s| s.trim_matches('"').len() <= 255));
    assert_eq!(Marker::from_txt(&txt), Some(m));
}

#[test]
fn target_group_tags_hold_the_owner_and_a_grow_only_set_of_timelines() {
    let m = marker();
    let mut tags: BTreeMap<String, String> = m.to_tags().into_iter().collect();
    assert_eq!(tags.get(&timeline_tag(3)).map(String::as_str), Some("pg2"));
    // Another router adds an older timeline later: the newest still wins.
    tags.insert(timeline_tag(2), "pg1".into());
    let read = Marker::from_tags(&tags).expect("marked");
    assert_eq!(
        (read.timeline, read.leader.as_deref()),
        (Some(3), Some("pg2"))
    );
    assert_eq!(read.owner, m.owner);
    assert_eq!(read.database, m.database);
    for tl in 4..=6 {
        tags.insert(timeline_tag(tl), "pg3".into());
    }
    assert_eq!(
        prunable_timeline_tags(&tags),
        vec![timeline_tag(2), timeline_tag(3)],
        "the oldest beyond the newest three"
    );
    assert_eq!(Marker::from_tags(&BTreeMap::new()), None);
}

#[test]
fn claims_tell_ours_from_foreign() {
    let m = marker();
    assert_eq!(Claim::of(m.clone(), &owner()), Claim::Ours(m.clone()));
    let other = Owner::of(Some("team-b"), "pgha", None).expect("owner");
    assert_eq!(
        Claim::of(m, &other),
        Claim::Foreign {
            owner: "db-7712154790783901088".into(),
            scope: "pg ha".into()
        }
    );
}
