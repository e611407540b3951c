//! The examples' shared code: a reference server of ticketflow's commerce contract
//! ([`commerce::CommerceServer`]), which `commerce_server` runs and the tests use, and how the
//! evaluations print their figures ([`report`]). The runnable
//! examples live beside this file; see Cargo.toml.

pub mod commerce;
pub mod report;
