//! Durable storage in LMDB (heed): the Raft log and hard state, the data-dir identity file, and
//! the built-in key-value state machine. Nothing here knows about actors.
