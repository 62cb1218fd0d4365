//! The seeded generator of test schedules: the test kit's splitmix64 (`raftix_testkit::chaos::rng`),
//! so that the tests and the fault suite share one generator.

// Not every test binary draws random schedules.
#[allow(unused_imports)]
pub use raftix_testkit::chaos::rng::Rng;

/// `len` bytes from a xorshift64 generator whose state starts at `state`: deterministic filler
/// (payloads, noise) that compresses badly.
pub fn xorshift_bytes(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
