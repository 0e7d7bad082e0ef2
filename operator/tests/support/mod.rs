//! Helpers of the operator's integration tests: the test services (shared
//! with the runner's tests), kubectl, and operator processes.
#![allow(dead_code)]

pub mod cluster;
pub mod operator;
#[path = "../../../runner/tests/support/services.rs"]
pub mod services;

use std::time::{Duration, Instant};

/// Polls `check` every 200 ms until it returns `Some`, for at most `limit`;
/// panics with `what` and the last value's description otherwise.
pub fn eventually<T>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("after {limit:?}, still not {what}: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}
