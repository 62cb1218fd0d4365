//! The linearizability checker: hand-written good and bad histories (`known`), and histories
//! generated from a real register, then broken (`random`).

mod known;
mod random;
