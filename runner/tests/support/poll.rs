//! Waiting for a condition in tests.

use std::time::{Duration, Instant};

/// Polls `check` every 200 ms until it returns `Ok`, for at most `limit`;
/// panics with `what` and the last error otherwise.
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
