//! The peer transport: persistent TCP connections carrying length-delimited, versioned bincode
//! frames between nodes.
