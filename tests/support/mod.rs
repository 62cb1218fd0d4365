//! Fixtures shared by the test binaries: in-process clusters, process clusters, proxies, load,
//! the core harness, a seeded generator, the browser driver. Each binary uses what it needs.
#![allow(dead_code)]

pub mod authed;
pub mod cluster;
pub mod core_harness;
pub mod extra_node;
pub mod extra_proc;
pub mod link_proxy;
pub mod load;
pub mod msg;
pub mod process;
pub mod proxy;
pub mod regions;
pub mod rng;
pub mod wait;
pub mod webdriver;
