//! Nanoseconds per `to_e164` call: the hand-written fast path (51 regions)
//! and the libphonenumber fallback (every other region).
//!
//! `cargo bench -p kith-pipeline --bench phone`
//!
//! No harness and no dependency: `Instant` around a fixed mix of numbers,
//! repeated, with `black_box` so the optimiser cannot hoist the calls. Each
//! figure is the median of a few rounds, after a warm-up round. Not timed:
//! the one-off load of libphonenumber's metadata (about 100 ms and 6 MiB,
//! once per process), which `Region::parse` of a fallback region triggers.

use std::hint::black_box;
use std::time::Instant;

use kith_pipeline::normalize::{to_e164, Region};

/// National and international forms across fast-path plans, one extension,
/// one country outside the table written with `+` (read by the fast path's
/// E.164 bounds) and one refusal.
const FAST: &[(&str, &str)] = &[
    ("(415) 555-0100", "US"),
    ("+1 415 555 0100", "DE"),
    ("020 7946 0958", "GB"),
    ("+44 (0)20 7946 0958", "US"),
    ("01 23 45 67 89", "FR"),
    ("030 1234567", "DE"),
    ("8 (912) 345-67-89", "RU"),
    ("090-1234-5678", "JP"),
    ("098765 43210", "IN"),
    ("06 1234 5678", "IT"),
    ("0011 44 20 7946 0958", "AU"),
    ("(11) 91234-5678", "BR"),
    ("415-555-0100 ext 12", "US"),
    ("+380 44 123 4567", "US"),
    ("082 123 4567", "ZA"),
    ("1-800-FLOWERS", "US"),
];

/// National numbers of regions outside the fast path.
const FALLBACK: &[(&str, &str)] = &[
    ("0912 345 678", "VN"),
    ("912 345 678", "PE"),
    ("044 123 4567", "UA"),
    ("01712-345678", "BD"),
    ("0612-345678", "MA"),
    ("071 234 5678", "LK"),
    ("0917 123 4567", "PH"),
    ("0812-3456-7890", "ID"),
    ("081 234 5678", "TH"),
    ("024 123 4567", "GH"),
];

const ROUNDS: usize = 5;

/// Median ns per call over `ROUNDS` rounds of `calls` calls each, or `None`
/// when no region of the mix is accepted (the fallback before it existed).
fn bench(name: &str, mix: &[(&str, &str)], calls: usize) -> Option<f64> {
    let cases: Vec<(&str, Region)> = mix
        .iter()
        .filter_map(|&(raw, iso)| Region::parse(iso).map(|r| (raw, r)))
        .collect();
    if cases.is_empty() {
        println!("{name}: no region of the mix is accepted");
        return None;
    }
    let accepted = cases.iter().filter(|(raw, r)| to_e164(raw, *r).is_some());
    let accepted = accepted.count();
    let run = |n: usize| {
        let start = Instant::now();
        for (raw, region) in cases.iter().cycle().take(n) {
            black_box(to_e164(black_box(raw), black_box(*region)));
        }
        start.elapsed()
    };
    run(calls / 10);
    let mut per_call: Vec<f64> = (0..ROUNDS)
        .map(|_| run(calls).as_nanos() as f64 / calls as f64)
        .collect();
    per_call.sort_by(f64::total_cmp);
    let median = per_call[ROUNDS / 2];
    println!(
        "{name}: {median:.1} ns/call (median of {ROUNDS} x {calls} calls; \
         min {:.1}, max {:.1}; {} numbers, {accepted} read)",
        per_call[0],
        per_call[ROUNDS - 1],
        cases.len(),
    );
    Some(median)
}

fn main() {
    bench("fast path", FAST, 1_000_000);
    bench("fallback (libphonenumber)", FALLBACK, 100_000);
}
