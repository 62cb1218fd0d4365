//! messages

pub mod peer_link;
