//! The REST gateway over in-process nodes: every route and error, forwarding, access control, limits, the dashboard's endpoints, fuzzing and schemathesis.
//!
//! One test binary per area (see README, "Tests"); the fixtures shared by every area are in
//! `tests/support`.

#[path = "../support/mod.rs"]
mod support;

mod api;
mod auth;
mod dashboard_api;
mod first_hour;
mod fuzz;
mod limits;
mod membership;
mod requests;
mod schemathesis;
mod tokens;
mod writes;
