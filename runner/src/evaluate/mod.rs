//! Scoring an export (docs/design.md §4) against the truth of a generated workload
//! (see `generate`): pairwise precision, recall and F1 of the partition of
//! person records into profiles, plus an over-merge alarm (profiles holding
//! more than one account). It only reads; it never needs the engine.
//!
//! Pairs are counted from a contingency table, the number of scored records
//! in each (profile, entity) cell, so the cost is linear in the records even
//! when an engine puts a million records in one profile; pairs are never
//! enumerated.
//!
//! Scored records are those the truth lists with kind `person` and the export
//! holds; records only one side knows are left out of the pairs. Truth lines
//! flagged `"retracted": true` are skipped (the generator omits them anyway),
//! and unknown fields are ignored on both sides, so exports may carry more
//! than this reads.

mod input;

#[cfg(test)]
mod tests;

use input::{ExportLine, LineReader, TruthLine};
use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;

/// Serializes with the field names below (`evaluate` prints it as JSON).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PairwiseScores {
    /// `correct_pairs / predicted_pairs`, 1.0 when nothing is predicted.
    pub precision: f64,
    /// `correct_pairs / true_pairs`, 1.0 when there is nothing to find.
    pub recall: f64,
    pub f1: f64,
    /// Pairs of scored records with the same truth entity.
    pub true_pairs: u64,
    /// Pairs of scored records in the same profile.
    pub predicted_pairs: u64,
    /// Pairs that are both.
    pub correct_pairs: u64,
    /// Scored records: person records present in both the truth and the export.
    pub records: u64,
    /// Export profiles (of any kind) holding more than one distinct `account_id`.
    pub profiles_with_multiple_accounts: u64,
}

/// Which input a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Export,
    Truth,
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Input::Export => "export",
            Input::Truth => "truth",
        })
    }
}

impl Input {
    fn example(self) -> &'static str {
        match self {
            Input::Export => {
                r#"one profile per line, such as {"profile_id": "p-1", "kind": "person", "records": [{"source": "crm", "id": "c-17"}], "identifiers": [{"type": "account_id", "value": "acct-1"}]}"#
            }
            Input::Truth => {
                r#"one record per line, such as {"source": "crm", "id": "c-17", "kind": "person", "entity": "person-17"}"#
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("reading the {input} at line {line}: {error}")]
    Io {
        input: Input,
        line: u64,
        #[source]
        error: std::io::Error,
    },
    #[error("{input} line {line}: {reason}; expected {}", input.example())]
    BadLine {
        input: Input,
        line: u64,
        reason: String,
    },
    #[error(
        "truth line {line}: record ({record_source}, {id}) was already listed on line {first}"
    )]
    DuplicateTruthRecord {
        line: u64,
        first: u64,
        record_source: String,
        id: String,
    },
    #[error(
        "export line {line}: record ({record_source}, {id}) is already in the profile on line {first}; \
         profiles must partition the records"
    )]
    DuplicateExportRecord {
        line: u64,
        first: u64,
        record_source: String,
        id: String,
    },
    /// Scores over nothing would read as perfect (no pair wrong).
    #[error("the truth lists no record; expected {}", Input::Truth.example())]
    EmptyTruth,
    #[error(
        "no record of the export is in the truth ({truth_records} truth records); \
         are they of the same data? expected {}", Input::Export.example()
    )]
    NothingScored { truth_records: usize },
}

/// What the truth says about one record.
struct TruthEntry {
    entity: u32,
    person: bool,
    /// The first truth line listing it (for duplicate reports).
    truth_line: u64,
    /// The export line holding it, 0 until seen.
    export_line: u64,
}

/// Scores `export` against `truth`. Both are JSON lines; empty lines are skipped.
pub fn pairwise(
    export: &mut dyn BufRead,
    truth: &mut dyn BufRead,
) -> Result<PairwiseScores, EvaluateError> {
    let mut records: HashMap<String, TruthEntry, ahash::RandomState> = HashMap::default();
    let mut entity_ids: HashMap<String, u32, ahash::RandomState> = HashMap::default();
    let mut key = String::new();

    let mut lines = LineReader::new(truth, Input::Truth);
    while let Some(line) = lines.next_json::<TruthLine>()? {
        let number = lines.line_number();
        if line.retracted {
            continue;
        }
        record_key(&mut key, &line.source, &line.id);
        if let Some(entry) = records.get(key.as_str()) {
            return Err(EvaluateError::DuplicateTruthRecord {
                line: number,
                first: entry.truth_line,
                record_source: line.source,
                id: line.id,
            });
        }
        let next_id = entity_ids.len() as u32;
        let entity = *entity_ids.entry(line.entity).or_insert(next_id);
        let entry = TruthEntry {
            entity,
            person: line.kind == "person",
            truth_line: number,
            export_line: 0,
        };
        records.insert(key.clone(), entry);
    }
    drop(entity_ids);
    if records.is_empty() {
        return Err(EvaluateError::EmptyTruth);
    }

    // Scored records per entity, for the true pairs.
    let mut per_entity: HashMap<u32, u64, ahash::RandomState> = HashMap::default();
    let (mut predicted_pairs, mut correct_pairs, mut scored, mut multi_account) =
        (0u64, 0u64, 0u64, 0u64);
    let mut cells: Vec<u32> = Vec::new();
    let mut lines = LineReader::new(export, Input::Export);
    while let Some(profile) = lines.next_json::<ExportLine>()? {
        let number = lines.line_number();
        cells.clear();
        for record in profile.records.iter().filter(|r| r.relationship.is_none()) {
            record_key(&mut key, &record.source, &record.id);
            let Some(entry) = records.get_mut(key.as_str()) else {
                continue;
            };
            if entry.export_line != 0 {
                return Err(EvaluateError::DuplicateExportRecord {
                    line: number,
                    first: entry.export_line,
                    record_source: record.source.clone(),
                    id: record.id.clone(),
                });
            }
            entry.export_line = number;
            if entry.person {
                cells.push(entry.entity);
            }
        }
        cells.sort_unstable();
        for run in cells.chunk_by(|a, b| a == b) {
            correct_pairs += pairs(run.len() as u64);
            *per_entity.entry(run[0]).or_default() += run.len() as u64;
        }
        predicted_pairs += pairs(cells.len() as u64);
        scored += cells.len() as u64;

        let mut accounts: Vec<&str> = profile
            .identifiers
            .iter()
            .filter(|i| i.id_type == "account_id")
            .map(|i| i.value.as_str())
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        if accounts.len() > 1 {
            multi_account += 1;
        }
    }
    if records.values().all(|entry| entry.export_line == 0) {
        return Err(EvaluateError::NothingScored {
            truth_records: records.len(),
        });
    }
    let true_pairs = per_entity.values().map(|&n| pairs(n)).sum();
    Ok(scores(
        true_pairs,
        predicted_pairs,
        correct_pairs,
        scored,
        multi_account,
    ))
}

fn scores(
    true_pairs: u64,
    predicted_pairs: u64,
    correct_pairs: u64,
    records: u64,
    multi_account: u64,
) -> PairwiseScores {
    let ratio = |num: u64, den: u64| {
        if den == 0 {
            1.0
        } else {
            num as f64 / den as f64
        }
    };
    let precision = ratio(correct_pairs, predicted_pairs);
    let recall = ratio(correct_pairs, true_pairs);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    PairwiseScores {
        precision,
        recall,
        f1,
        true_pairs,
        predicted_pairs,
        correct_pairs,
        records,
        profiles_with_multiple_accounts: multi_account,
    }
}

/// Unordered pairs among `n` records.
fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// One string per `(source, id)`; the length prefix keeps `("a:b", "c")` and
/// `("a", "b:c")` apart whatever the characters.
fn record_key(buf: &mut String, source: &str, id: &str) {
    use std::fmt::Write;
    buf.clear();
    let _ = write!(buf, "{}:{source}{id}", source.len());
}
