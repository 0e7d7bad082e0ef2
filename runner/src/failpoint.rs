//! Named places where a test can make a runner thread panic, to prove that
//! a failing thread stops the run instead of leaving it running on half its
//! work. Set `KITH_FAILPOINT` to a comma-separated list of names. Compiled
//! into debug builds only: a release binary ignores the variable.

/// Panics here when `KITH_FAILPOINT` names `name` (debug builds only).
pub fn hit(name: &'static str) {
    #[cfg(debug_assertions)]
    if std::env::var("KITH_FAILPOINT").is_ok_and(|v| v.split(',').any(|n| n.trim() == name)) {
        panic!("failpoint `{name}` (KITH_FAILPOINT, a debug build's test hook)");
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
