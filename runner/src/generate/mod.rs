//! The adversarial synthetic workload behind `kith-runner generate`: canonical
//! observations (docs/design.md §2) about a known population, plus a truth file that
//! says which entity every live record belongs to, so that `evaluate` can
//! score an engine's export. It exists to make over-merging and
//! order-dependence visible; it must never depend on anything but
//! `(people, seed)`, so that a benchmark is reproducible byte for byte.
//!
//! # What the workload contains
//!
//! Rates are per person unless said otherwise; they are targets of the random
//! draws, so small populations wander around them.
//!
//! * **People** (`person-<n>`, `n` from 0): a given name (some with a
//!   nickname), a surname, a city (30% move to another city at some instant,
//!   so the most recent record wins), a plan; 1 email (70%) or 2 (30%); no
//!   phone (25%), 1 (55%) or 2 (20%); an `account_id` (85%, and always for
//!   household members); no own device (30%), 1 (50%) or 2 (20%); 1 cookie
//!   (60%) or 2 (40%). Every value is unique to its owner, except the shared
//!   ones below.
//! * **Records**: 2 (25%), 3 (35%), 4 (25%) or 5 (15%) records per person, from
//!   the sources `crm` 25%, `web` 25%, `app` 20%, `billing` 15%, `support` 15%
//!   (ids `c-`, `w-`, `a-`, `b-`, `s-` and a per-source counter). Each source
//!   carries the identifier types it would know (crm: email, phone, account;
//!   web: cookie, email, account; app: device, account, email; billing:
//!   account, email; support: phone, email) and a subset of them: the first
//!   record holds the first email, every later record holds one identifier
//!   that an earlier record already holds plus up to two more, so a person's
//!   records are connected, often only transitively.
//! * **Versions**: 62% of records have one version, 30% two, 8% three, each
//!   later by 1 h to 15 days, with attributes that change (city after a move,
//!   plan, app version, a nickname instead of the given name). 1% of the records
//!   with several versions have a first version carrying another person's email
//!   (a typo) that the later version corrects.
//! * **Formatting variants**: 45% of identifier occurrences are written in a
//!   non-canonical form: `" Ann.Lee.17@Example.COM "`, `+1 (415) 555-0100`,
//!   `415-555-0100`, `1 415 555 0100`, upper-case device ids with spaces,
//!   account ids and cookies with surrounding spaces (never a case change for
//!   those two: they are only trimmed).
//! * **Households**: a household of 2-5 consecutive people starts with
//!   probability 3% (about 10% of people end up in one). Each member has their
//!   own account and one record holding both that account and the shared
//!   tablet's device id (with a `uses` relationship); half of the members also
//!   get an extra `app` record holding only their first email and the tablet.
//!   The truth keeps the members apart.
//! * **Junk identifiers**: 4% of account holders get one of `test@test.com`,
//!   the phone `0000000000`, `noemail@none.com` or the device
//!   `00000000-0000-0000-0000-000000000000` (with case and format variants) on
//!   1 or 2 of their records, always beside their own account.
//! * **Bridges**: 1% of people are the subject of a wrong `support` or `crm`
//!   record holding their phone (or first email) and the first email of a
//!   random other person; a retraction with a later ts follows.
//! * **Deletions**: 4% of people with 3 or more records lose their last record
//!   to a retraction (the last record is one no other record depends on, so
//!   the person stays connected).
//! * **Relationships**: `uses` device on 70% of the app records holding an own
//!   device, `owns` account on 50% of the billing records holding the account,
//!   `member_of` organization on the crm records of 10% of people.
//! * **Organizations**: one per 500 people (at least one), each with a `crm` and
//!   a `billing` record of kind `organization` holding its `org-…` account id.
//!
//! Timestamps lie between 2026-01-01 and about 2026-04-30 (UTC, whole seconds);
//! a record's versions and its retraction have strictly increasing ts, so the
//! tie rules of docs/design.md §2 never decide the truth. All lines are shuffled at the
//! end, which puts many updates and retractions before the versions they
//! replace. On average a person yields about 5 observations.
//!
//! # Output formats
//!
//! Observations: one compact JSON object per line, with `relationships` left
//! out when empty. The truth (optional): one line per record that is live at
//! the end, in generation order, `{"source":"crm","id":"c-17","kind":"person",
//! "entity":"person-17"}`. Retracted records (bridges, deletions) are omitted,
//! not listed with a flag: they belong to no entity.
//!
//! # Determinism
//!
//! Person `n` draws from its own ChaCha8 stream of the seed, so a person can be
//! recomputed (a bridge needs another person's email) without replaying the
//! population; cross-person structure (households, organizations) and the
//! shuffle use streams of their own. Bounded draws are done here rather than
//! with `rand`'s distributions, whose output is not promised across versions.

mod dice;
mod emit;
mod ids;
mod people;
mod records;
mod shuffle;
mod variants;

#[cfg(test)]
mod tests;

use std::io::Write;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    pub people: u64,
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GenerateStats {
    pub people: u64,
    /// Lines written (versions and retractions).
    pub observations: u64,
    /// Distinct record keys `(source, id)`, live or retracted.
    pub records: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("writing the observations: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing the truth file: {0}")]
    Truth(#[source] std::io::Error),
    #[error(
        "--people {people}: at most {max} people can be generated (identifier values would repeat)"
    )]
    TooManyPeople { people: u64, max: u64 },
}

/// The largest population whose identifier values stay unique: phone numbers
/// are the scarcest (see `ids::Salts::phone`), at two per person; email
/// numbers allow 2^32 people.
pub const MAX_PEOPLE: u64 = ids::PHONE_CAPACITY / 2;

/// Writes the shuffled observations of `opts.people` people to `out`, and the
/// truth to `truth` when given. Nothing is written to `out` before the whole
/// workload is built (the shuffle needs it all).
pub fn generate(
    opts: &GenerateOptions,
    out: &mut dyn Write,
    truth: Option<&mut dyn Write>,
) -> Result<GenerateStats, GenerateError> {
    if opts.people > MAX_PEOPLE {
        return Err(GenerateError::TooManyPeople {
            people: opts.people,
            max: MAX_PEOPLE,
        });
    }
    let mut lines = shuffle::Lines::with_capacity_for(opts.people);
    let mut truth = truth.map(emit::TruthWriter::new);
    let records = records::build(opts, &mut lines, truth.as_mut())?;
    if let Some(t) = truth {
        t.finish()?;
    }
    let observations = lines.len() as u64;
    lines.shuffle_into(opts.seed, out)?;
    Ok(GenerateStats {
        people: opts.people,
        observations,
        records,
    })
}
