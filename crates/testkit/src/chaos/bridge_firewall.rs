//! Lets the namespaces of a run talk through their bridge when the host firewall would drop
//! bridged traffic.
//!
//! A host running Docker loads `br_netfilter` (`net.bridge.bridge-nf-call-iptables = 1`) and sets
//! the iptables `FORWARD` policy to `DROP`: every frame crossing any bridge, ours included, then
//! goes through that chain and node-to-node TCP dies. Turning the sysctl off would change the
//! host's other bridges; instead each run inserts one rule that accepts what enters and leaves
//! its own bridge (`-i rxb<tag> -o rxb<tag>`), in every iptables flavour present (nft and
//! legacy tables are both consulted by the kernel), and deletes it at teardown. Rules of runs
//! whose harness died are removed by [`remove_leftover_rules`]. Without iptables nothing is done:
//! the connectivity probe at setup still decides whether namespaces are usable.

use super::netns::find_tool;

/// The iptables front ends whose rules the kernel applies.
const FLAVOURS: [&str; 2] = ["iptables", "iptables-legacy"];

/// The rule's match and target for `bridge`, after `-I FORWARD 1` / `-D FORWARD`.
fn rule(bridge: &str) -> [&str; 6] {
    ["-i", bridge, "-o", bridge, "-j", "ACCEPT"]
}

fn iptables(flavour: &str, args: &[&str]) -> Option<String> {
    let path = find_tool(flavour)?;
    let out = std::process::Command::new(path)
        .arg("-w")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Accepts forwarded traffic within `bridge`, in every iptables flavour present; returns the
/// flavours that took the rule (for [`disallow`]).
pub fn allow(bridge: &str) -> Vec<&'static str> {
    FLAVOURS
        .into_iter()
        .filter(|flavour| {
            let mut args = vec!["-I", "FORWARD", "1"];
            args.extend(rule(bridge));
            iptables(flavour, &args).is_some()
        })
        .collect()
}

/// Deletes the rule [`allow`] inserted for `bridge` (best effort).
pub fn disallow(bridge: &str, flavours: &[&str]) {
    for flavour in flavours {
        let mut args = vec!["-D", "FORWARD"];
        args.extend(rule(bridge));
        let _ = iptables(flavour, &args);
    }
}

/// Deletes the rules of bridges named by `is_leftover` (those of killed runs); returns how many.
pub fn remove_leftover_rules(is_leftover: impl Fn(&str) -> bool) -> usize {
    let mut removed = 0;
    for flavour in FLAVOURS {
        let Some(listing) = iptables(flavour, &["-S", "FORWARD"]) else {
            continue;
        };
        for line in listing.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(bridge) = words
                .iter()
                .position(|w| *w == "-i")
                .and_then(|i| words.get(i + 1))
            else {
                continue;
            };
            if words.ends_with(&rule(bridge)[2..]) && is_leftover(bridge) {
                disallow(bridge, &[flavour]);
                removed += 1;
            }
        }
    }
    removed
}
