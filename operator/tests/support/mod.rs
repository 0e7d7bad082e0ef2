//! Helpers of the operator's integration tests: the test services (shared
//! with the runner's tests), kubectl, and operator processes.
#![allow(dead_code)]

pub mod cluster;
pub mod operator;
#[path = "../../../runner/tests/support/services.rs"]
pub mod services;

#[path = "../../../runner/tests/support/poll.rs"]
mod poll;
pub use poll::eventually;
