//! The seeded generator of test schedules: the test kit's splitmix64 (`raftix_testkit::chaos::rng`),
//! so that the tests and the fault suite share one generator.

// Not every test binary draws random schedules.
#[allow(unused_imports)]
pub use raftix_testkit::chaos::rng::Rng;
