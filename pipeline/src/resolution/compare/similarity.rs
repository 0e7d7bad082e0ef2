//! String similarities on characters (Unicode scalar values, not bytes):
//! Jaro-Winkler, and edit distances (Levenshtein, optimal string alignment)
//! bounded by a maximum so that a far pair costs little.
//!
//! These run on every candidate pair. They must never allocate for values of
//! ordinary length (work buffers live on the stack up to a few hundred
//! characters; only longer values spill to the heap) and never panic. The
//! comparators call the slice versions on characters decoded once per record;
//! the `&str` versions decode on the fly (ASCII strings are used as bytes,
//! which gives the same result since an ASCII byte is a character).

use smallvec::SmallVec;

/// Characters decoded on the stack for name-length values.
type Chars = SmallVec<[char; 32]>;

/// Winkler's prefix scale: each common leading character (up to
/// [`MAX_PREFIX`]) closes 10% of the remaining gap to 1.
const PREFIX_SCALE: f64 = 0.1;
const MAX_PREFIX: usize = 4;
/// Winkler applies the prefix bonus only to pairs already similar (Jaro above
/// 0.7), as in his original definition and in the common record-linkage
/// tools: two unrelated names sharing an initial stay unrelated.
const BOOST_THRESHOLD: f64 = 0.7;

/// Jaro-Winkler similarity on chars: standard prefix scale 0.1, max prefix 4,
/// bonus applied above a Jaro similarity of 0.7; 1.0 for equal non-empty
/// strings, 0.0 if either is empty. Symmetric.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    if a.is_ascii() && b.is_ascii() {
        return jaro_winkler_slices(a.as_bytes(), b.as_bytes());
    }
    let a: Chars = a.chars().collect();
    let b: Chars = b.chars().collect();
    jaro_winkler_slices(&a, &b)
}

/// Levenshtein distance on chars (insertions, deletions, substitutions),
/// `Some(d)` when `d <= max`, None otherwise; it stops as soon as every
/// alignment is known to cost more than `max`.
pub fn levenshtein_within(a: &str, b: &str, max: u32) -> Option<u32> {
    if a.is_ascii() && b.is_ascii() {
        return bounded_edit_distance(a.as_bytes(), b.as_bytes(), max, false);
    }
    let a: Chars = a.chars().collect();
    let b: Chars = b.chars().collect();
    bounded_edit_distance(&a, &b, max, false)
}

/// Optimal string alignment distance on chars: Levenshtein where swapping two
/// adjacent characters counts as one edit (no substring is edited twice, the
/// restricted Damerau-Levenshtein distance), bounded like
/// [`levenshtein_within`].
pub fn osa_within(a: &str, b: &str, max: u32) -> Option<u32> {
    if a.is_ascii() && b.is_ascii() {
        return bounded_edit_distance(a.as_bytes(), b.as_bytes(), max, true);
    }
    let a: Chars = a.chars().collect();
    let b: Chars = b.chars().collect();
    bounded_edit_distance(&a, &b, max, true)
}

pub(super) fn jaro_winkler_slices<T: Copy + Ord>(a: &[T], b: &[T]) -> f64 {
    let j = jaro(a, b);
    if j <= BOOST_THRESHOLD {
        return j;
    }
    let prefix = a
        .iter()
        .zip(b)
        .take(MAX_PREFIX)
        .take_while(|(x, y)| x == y)
        .count();
    j + prefix as f64 * PREFIX_SCALE * (1.0 - j)
}

fn jaro<T: Copy + Ord>(a: &[T], b: &[T]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a == b {
        return 1.0;
    }
    // Greedy matching can depend on which string is scanned: scan in a fixed
    // order (shorter first, then smaller) so that a pair scores the same
    // whichever record arrived first.
    let (a, b) = if (a.len(), a) <= (b.len(), b) {
        (a, b)
    } else {
        (b, a)
    };
    let lb = b.len();
    if lb <= 64 {
        jaro_short(a, b)
    } else {
        // Matched flags as bits in a small vector (on the stack up to 256
        // chars each).
        let words_a = a.len().div_ceil(64);
        let mut flags: SmallVec<[u64; 8]> = SmallVec::new();
        flags.resize(words_a + lb.div_ceil(64), 0);
        let (flags_a, flags_b) = flags.split_at_mut(words_a);
        jaro_with_flags(a, b, flags_a, flags_b)
    }
}

/// [`jaro_with_flags`] for values of at most 64 chars (every name), with the
/// matched flags in one register each: this is the hot path.
fn jaro_short<T: Copy + Eq>(a: &[T], b: &[T]) -> f64 {
    let (la, lb) = (a.len(), b.len());
    let window = (la.max(lb) / 2).saturating_sub(1);
    let (mut flags_a, mut flags_b) = (0u64, 0u64);
    let mut matches = 0u32;
    for (i, &ca) in a.iter().enumerate().take(64) {
        let lo = i.saturating_sub(window);
        let hi = i.saturating_add(window).saturating_add(1).min(lb).min(64);
        for (offset, &cb) in b.get(lo..hi).unwrap_or(&[]).iter().enumerate() {
            let j = lo + offset;
            if cb == ca && flags_b & (1u64 << j) == 0 {
                flags_b |= 1u64 << j;
                flags_a |= 1u64 << i;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    // Walk the matched characters of both in order, lowest bit first.
    let mut half_transpositions = 0u32;
    while flags_a != 0 && flags_b != 0 {
        let (i, j) = (
            flags_a.trailing_zeros() as usize,
            flags_b.trailing_zeros() as usize,
        );
        if a.get(i) != b.get(j) {
            half_transpositions += 1;
        }
        flags_a &= flags_a - 1;
        flags_b &= flags_b - 1;
    }
    let m = f64::from(matches);
    let t = f64::from(half_transpositions / 2);
    (m / la as f64 + m / lb as f64 + (m - t) / m) / 3.0
}

/// Jaro similarity of non-empty `a` and `b`, `a` no longer than `b`, with
/// zeroed flag words for each.
fn jaro_with_flags<T: Copy + Eq>(
    a: &[T],
    b: &[T],
    flags_a: &mut [u64],
    flags_b: &mut [u64],
) -> f64 {
    let (la, lb) = (a.len(), b.len());
    let window = (la.max(lb) / 2).saturating_sub(1);

    let mut matches = 0usize;
    for (i, &ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = i.saturating_add(window).saturating_add(1).min(lb);
        for (offset, &cb) in b.get(lo..hi).unwrap_or(&[]).iter().enumerate() {
            let j = lo + offset;
            if cb == ca && !bit(flags_b, j) {
                set(flags_b, j);
                set(flags_a, i);
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }

    // Matched characters of a and b, each in order: positions where they
    // differ are half-transpositions (halved with integer division, as in
    // Winkler's reference code).
    let mut half_transpositions = 0usize;
    let mut k = 0usize;
    for (i, &ca) in a.iter().enumerate() {
        if !bit(flags_a, i) {
            continue;
        }
        while k < lb && !bit(flags_b, k) {
            k += 1;
        }
        if b.get(k).is_some_and(|&cb| cb != ca) {
            half_transpositions += 1;
        }
        k += 1;
    }
    let m = matches as f64;
    let t = (half_transpositions / 2) as f64;
    (m / la as f64 + m / lb as f64 + (m - t) / m) / 3.0
}

#[inline]
fn bit(words: &[u64], i: usize) -> bool {
    words
        .get(i >> 6)
        .is_some_and(|w| w & (1u64 << (i & 63)) != 0)
}

#[inline]
fn set(words: &mut [u64], i: usize) {
    if let Some(w) = words.get_mut(i >> 6) {
        *w |= 1u64 << (i & 63);
    }
}

/// Edit distance within `max`, on a diagonal band of the dynamic-programming
/// matrix: a cell further than `max` from the diagonal costs more than `max`,
/// so only `2 * max + 1` cells per row are computed, and the scan stops at
/// the first row whose cells all exceed `max` (row minima never decrease,
/// transpositions included: a transposition costs no less than the
/// substitution path through the previous row).
pub(super) fn bounded_edit_distance<T: Copy + Eq>(
    a: &[T],
    b: &[T],
    max: u32,
    transpositions: bool,
) -> Option<u32> {
    // A common prefix or suffix never changes the distance (for OSA too: a
    // transposition across the boundary would swap two equal characters).
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a, b) = (&a[..a.len() - suffix], &b[..b.len() - suffix]);

    let (n, m) = (a.len(), b.len());
    let length_gap = n.abs_diff(m);
    if length_gap as u64 > u64::from(max) {
        return None;
    }
    if n == 0 || m == 0 {
        // Only insertions (or deletions) remain; length_gap <= max <= u32::MAX.
        return u32::try_from(length_gap).ok();
    }
    // The distance never exceeds the longer length: a larger bound only
    // widens the band for nothing.
    let k = (max as usize).min(n.max(m));
    let over = k + 1; // any cost above the bound

    // Rows in diagonal coordinates: cell (i, j) sits at `j - i + k + 1` of
    // row i, so a row holds only its band (2k + 1 cells) between two
    // sentinels that always read "more than the bound". The diagonal
    // neighbour (i-1, j-1) and the transposition source (i-2, j-2) are at the
    // same index one and two rows up; (i-1, j) is one to the right, (i, j-1)
    // one to the left. Three rows (i-2, i-1, i), row r in slot r % 3; for the
    // usual bounds (up to 6) they fit on the stack.
    let width = 2 * k + 3;
    let mut rows: SmallVec<[usize; 48]> = SmallVec::new();
    rows.resize(3 * width, over);
    // Row 0: D[0][j] = j.
    for j in 0..=k.min(m) {
        rows[j + k + 1] = j;
    }
    for i in 1..=n {
        let cur = (i % 3) * width;
        let prev = ((i + 2) % 3) * width;
        let prev2 = ((i + 1) % 3) * width;
        // The slot still holds row i - 3: cells outside this row's columns
        // (before column 0, after column m) must read "more than the bound".
        rows[cur..cur + width].fill(over);
        let mut row_min = over;
        if i <= k {
            // Column 0: D[i][0] = i.
            rows[cur + k + 1 - i] = i;
            row_min = i;
        }
        let lo = i.saturating_sub(k).max(1);
        let hi = (i + k).min(m);
        let ca = a[i - 1];
        for j in lo..=hi {
            let at = j + k + 1 - i;
            let cb = b[j - 1];
            let mut d = (rows[prev + at] + usize::from(ca != cb))
                .min(rows[prev + at + 1] + 1)
                .min(rows[cur + at - 1] + 1);
            if transpositions && i > 1 && j > 1 && ca == b[j - 2] && a[i - 2] == cb {
                d = d.min(rows[prev2 + at] + 1);
            }
            let d = d.min(over);
            rows[cur + at] = d;
            row_min = row_min.min(d);
        }
        if row_min > k {
            return None;
        }
    }
    // |n - m| <= k, so the last cell is inside the band.
    let d = rows[(n % 3) * width + m + k + 1 - n];
    if d <= k {
        u32::try_from(d).ok()
    } else {
        None
    }
}
