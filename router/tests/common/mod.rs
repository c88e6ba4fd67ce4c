//! The router tests' harness: the shared async test helpers of
//! `telerad-fixtures`, and two telerad "processes" on one database
//! ([`nodes`]).

#![allow(dead_code)]

pub mod nodes;

// Each test binary compiles this module; not all of them use every name.
#[allow(unused_imports)]
pub use telerad_fixtures::database::{Backend, POSTGRES_URL_VAR, PgDatabase};
#[allow(unused_imports)]
pub use telerad_fixtures::harness::{dataset_bytes, runtime};
