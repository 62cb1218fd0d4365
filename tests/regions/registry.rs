//! Changing the region registry of running, replicating regions (each a 3-node `raftix serve`
//! cluster on loopback, issue 8): a region added to regions that already replicate to each
//! other, and a region removed and added again, receive every write made from then on, and
//! their links catch up (`applied_from_seq` = `last_seq`).

use crate::support::regions;

use std::time::Duration;

use regions::{Regions, CONVERGE};

const EU: usize = 0;
const US: usize = 1;
const AP: usize = 2;

/// Waits until node 1 of region `r` reads `value` for `key`.
fn wait_read(regions: &Regions, r: usize, key: &str, value: &str) {
    regions.clusters[r].wait_for(
        Duration::from_secs(20),
        &format!("{key} = {value} in {}", regions.names[r]),
        || {
            let read = regions.read(r, 1, key)?;
            (read.value.as_deref() == Some(value.as_bytes())).then_some(())
        },
    );
}

/// eu and us replicate to each other (their outboxes numbered well past 1) before ap joins
/// them: ap gets every write made after it was added (not the earlier ones: the docs say to
/// seed a new region from a backup), and eu and us get ap's. Every link catches up.
#[test]
fn a_region_added_to_replicating_regions_gets_the_writes_from_then_on() {
    let regions = Regions::start_unlinked(&["eu", "us", "ap"]);
    regions.link(EU, US);
    regions.link(US, EU);
    for i in 0..5 {
        regions.put_ok(EU, 1, &format!("early/eu/{i}"), "e");
        regions.put_ok(US, 1, &format!("early/us/{i}"), "u");
    }
    wait_read(&regions, US, "early/eu/4", "e");
    wait_read(&regions, EU, "early/us/4", "u");

    for other in [EU, US] {
        regions.link(AP, other);
        regions.link(other, AP);
    }
    let mut keys = Vec::new();
    for (r, name) in ["eu", "us", "ap"].iter().enumerate() {
        for i in 0..3 {
            let key = format!("late/{name}/{i}");
            regions.put_ok(r, 1 + i as u64, &key, name);
            keys.push(key);
        }
    }
    let values = regions.wait_converged(&keys, CONVERGE);
    for key in &keys {
        let origin = key.split('/').nth(1).unwrap_or_default();
        assert_eq!(values[key].as_deref(), Some(origin.as_bytes()), "{key}");
    }
    // Written before ap was added: not shipped to it.
    assert_eq!(
        regions.read(AP, 1, "early/eu/0").and_then(|r| r.value),
        None
    );
}

/// us is removed from eu's registry and added again while both keep writing: us's writes made
/// meanwhile (which eu refused, not knowing us) reach eu once it knows us again, and the link
/// catches up both ways.
#[test]
fn a_region_removed_and_added_again_resumes() {
    let regions = Regions::start(&["eu", "us"]);
    regions.put_ok(EU, 1, "before/eu", "e");
    regions.put_ok(US, 1, "before/us", "u");
    regions.wait_replicated(CONVERGE);

    regions.unlink(EU, US);
    regions.put_ok(US, 2, "during/us", "u");
    regions.link(EU, US);
    regions.put_ok(EU, 3, "after/eu", "e");
    regions.put_ok(US, 3, "after/us", "u");
    let keys: Vec<String> = [
        "before/eu",
        "before/us",
        "during/us",
        "after/eu",
        "after/us",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    let values = regions.wait_converged(&keys, CONVERGE);
    for key in &keys {
        let want: &[u8] = if key.ends_with("/eu") { b"e" } else { b"u" };
        assert_eq!(values[key].as_deref(), Some(want), "{key}");
    }
}
