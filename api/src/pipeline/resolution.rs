//! Entity resolution: probabilistic matching of records that share no
//! identifier, from their attributes (Fellegi-Sunter).
//!
//! Records of one kind are grouped by *blocking* keys derived from their
//! attributes; each pair in a common block is compared attribute by attribute,
//! each comparison lands on a level (exact, close, ..., different), and each
//! level carries a match weight `log2(m / u)`. The weights add up with the
//! prior to a match probability, which is compared with two thresholds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolutionSpec {
    /// The kind of entity resolved (default `person`).
    #[serde(default = "person")]
    pub kind: String,
    /// Keys derived from attributes, used by blocking rules.
    pub keys: Vec<BlockingKeySpec>,
    /// Which pairs of records are compared at all: those that share the
    /// keys of one rule.
    pub blocking: BlockingSpec,
    /// The attribute comparisons whose agreement levels are weighed.
    pub comparisons: Vec<ComparisonSpec>,
    /// How `kith-runner train` estimates the model (default: EM sessions on
    /// the blocking rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingSpec>,
    /// Comparisons that members of one household share (surname, address,
    /// home phone): their agreement says "same household", not "same
    /// person", so together they are capped (see [`HouseholdSpec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub households: Option<HouseholdSpec>,
    /// A model file written by `kith-runner train` (m and u probabilities,
    /// term frequencies, prior), relative to the pipeline file. Without one,
    /// every comparison needs `m` and `u`, and `prior` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Probability that two random records of the kind match, before any
    /// comparison (overridden by the model's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<f64>,
    /// Pairs at or above this match probability are linked (default 0.99).
    #[serde(default = "match_threshold")]
    pub match_threshold: f64,
    /// Pairs at or above this probability and below the match threshold are
    /// reported as possible matches, never linked (default 0.5).
    #[serde(default = "possible_threshold")]
    pub possible_threshold: f64,
    /// A match is not followed when it would put in one profile two records
    /// that disagree this strongly: their disagreeing comparisons (the
    /// negative weights, household comparisons aside) sum to more than this
    /// many bits against a match (default 20, odds of about a million to
    /// one: records with many fields can have several damaged ones and still
    /// be one person). Such a match is reported as a conflict instead.
    #[serde(default = "max_disagreement")]
    pub max_disagreement: f64,
    /// Attribute values longer than this many characters are truncated (and
    /// counted) before comparison (default 200).
    #[serde(default = "max_value_chars")]
    pub max_value_chars: u32,
}

fn person() -> String {
    "person".to_string()
}
fn match_threshold() -> f64 {
    0.99
}
fn possible_threshold() -> f64 {
    0.5
}
fn max_disagreement() -> f64 {
    20.0
}
fn max_value_chars() -> u32 {
    200
}

/// A key derived from one attribute, for blocking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockingKeySpec {
    pub name: String,
    /// The attribute the key is derived from (or give `identifier`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// An identifier type whose normalized value the key is derived from,
    /// instead of an attribute (the smallest value when a record has several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// How the key is derived from the (cleaned, lower-cased) value.
    #[serde(default)]
    pub transform: KeyTransform,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum KeyTransform {
    /// The cleaned value itself.
    #[default]
    Exact,
    /// The first N characters.
    Prefix(u32),
    /// The last N characters.
    Suffix(u32),
    /// The NYSIIS phonetic code of the value (for names): letters only,
    /// accents folded, truncated to 6 characters.
    Phonetic,
    /// The year of a date.
    Year,
    /// The month and day of a date (`MMDD`), so that a wrong year still blocks.
    MonthDay,
    /// Only the digits of the value.
    Digits,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockingSpec {
    /// Each rule is a list of key names that must all be equal (AND); a pair
    /// is a candidate when any rule matches (OR).
    pub rules: Vec<Vec<String>>,
    /// A block holding more records than this is skipped (and counted): its
    /// key is too common to tell records apart, and comparing all its pairs
    /// would cost quadratic time (default 500).
    #[serde(default = "max_block_size")]
    pub max_block_size: u32,
}

fn max_block_size() -> u32 {
    500
}

/// One comparison of an attribute between two records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComparisonSpec {
    /// The comparison's name in models and explanations (default: the attribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The attribute compared (or give `identifier`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// An identifier type compared by its normalized value instead of an
    /// attribute (an SSN one edit away, a phone number's last digits); the
    /// smallest value when a record has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    pub method: ComparisonMethod,
    /// Adjust the exact-match weight by how common the value is (a shared
    /// rare surname is stronger evidence than a shared common one).
    #[serde(default)]
    pub term_frequency: bool,
    /// Another attribute this one is often swapped with (given name and
    /// surname, two address lines): adds a level "swapped", right after
    /// "equal", for pairs whose two attributes match crosswise (each at
    /// least the method's weakest level short of "different").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swapped_with: Option<String>,
    /// Names known to be the same (Bob and Robert, Peggy and Margaret): adds
    /// a level "nickname", right after "equal" (and "swapped").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nicknames: Option<NicknameSpec>,
    /// Probability of each level among matching pairs, best level first
    /// (overridden by the model's). The last level is "different".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<Vec<f64>>,
    /// Probability of each level among non-matching pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u: Option<Vec<f64>>,
}

/// How two values are compared, and the levels that result (best first; a
/// missing value on either side is no evidence either way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum ComparisonMethod {
    /// Levels: equal, different.
    Exact,
    /// Levels: equal, then one per threshold (similarity at least it), different.
    JaroWinkler { thresholds: Vec<f64> },
    /// Levels: equal, then one per maximum edit distance, different.
    Levenshtein { max_distances: Vec<u32> },
    /// As `levenshtein`, a transposition of neighbours counting as one edit.
    DamerauLevenshtein { max_distances: Vec<u32> },
    /// Levels: equal, same NYSIIS phonetic code, different.
    Phonetic,
    /// Dates in unambiguous formats (`YYYYMMDD`, `YYYY-MM-DD`, `DD/MM/YYYY`
    /// when the day is over 12, ...). Levels: equal, day and month
    /// transposed, one edit in the eight digits `YYYYMMDD`, then for each
    /// maximum year distance `d`: same month and day and years at most `d`
    /// apart; different. A date that cannot be read is missing (and counted).
    ///
    /// `formats` declares how this attribute writes its dates, tried in
    /// order after the unambiguous ones (`%Y` four-digit year, `%m` month,
    /// `%d` day, one or two digits each; any other character is literal),
    /// e.g. `["%m/%d/%Y"]` for US dates: `03/04/1990` is then the 4th of
    /// March.
    Date {
        #[serde(default)]
        max_year_distances: Vec<u32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        formats: Vec<String>,
    },
    /// Numbers. Levels: equal, then one per maximum absolute difference, different.
    Numeric { max_differences: Vec<f64> },
    /// Postcodes. Levels: equal, one edit, then one per shared prefix length
    /// (longest first), different.
    Postcode { prefix_lengths: Vec<u32> },
    /// Values whose ends matter most (phone numbers: the same last 7 digits
    /// is the same line behind another prefix). Levels: equal, then one per
    /// length (longest first) for the same last characters, different.
    Suffix { lengths: Vec<u32> },
}

/// Equivalent names for a comparison's "nickname" level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NicknameSpec {
    /// Use the table shipped with the runner: common English given names and
    /// their short forms (default true).
    #[serde(default = "yes")]
    pub builtin: bool,
    /// More groups of names that are the same name, e.g.
    /// `[["peggy", "margaret", "maggie"]]`, compared after cleaning
    /// (lower case, accents kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Vec<String>>,
}

fn yes() -> bool {
    true
}

/// Training sessions: like Splink, the blocking rules that find pairs for
/// EM can differ from the rules that find pairs to score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrainingSpec {
    /// One EM session per rule (a list of key names, all equal). A rule
    /// should pick pairs by something that says little about the other
    /// comparisons: a date of birth, or a full name; a rule on surname and
    /// address finds households, whose members disagree on everything
    /// personal. Default: the blocking rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Vec<String>>,
}

/// The comparisons that describe a household rather than a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HouseholdSpec {
    /// Names of comparisons (surname, address parts, home phone).
    pub comparisons: Vec<String>,
    /// Their positive weights together lift the match probability of a pair
    /// to at most this, whatever else agrees: two records of one household
    /// are one person only if personal evidence (given name, date of birth,
    /// an SSN) says so (default 0.5).
    #[serde(default = "household_probability")]
    pub max_probability: f64,
    /// Of those comparisons, the ones a move changes together (house
    /// number, street, zip, landline): when they disagree, the strongest
    /// disagreement counts and the others do not, since a mover's new
    /// address is one fact however many fields show it. Default: none, each
    /// disagreement counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<String>,
}

fn household_probability() -> f64 {
    0.5
}
