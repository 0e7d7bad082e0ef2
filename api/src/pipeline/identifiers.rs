use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One identifier type: how its values are normalized and how it links records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentifierTypeSpec {
    /// The type name as it appears in observations (`email`, `phone`, ...).
    #[serde(rename = "type")]
    pub type_name: String,
    /// The built-in normalization applied first.
    #[serde(default)]
    pub normalize: NormalizePreset,
    /// Extra rules applied in order after the preset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<NormalizeRule>,
    /// Whether records sharing a value of this type are linked (default true).
    /// A non-linking identifier is kept on the profile and can be looked up.
    #[serde(default = "yes")]
    pub link: bool,
    /// Makes the type exclusive: a profile holds at most this many distinct
    /// values of it (an `account_id` limit of 1: two accounts are never one person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_limit: Option<u32>,
    /// Regular expressions (matched against the normalized value) of junk values
    /// that never count as evidence, such as `^test@test\.com$`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocklist: Vec<String>,
    /// Canonical processing rank when links conflict with an exclusive limit:
    /// lower ranks link first. Default 0 for exclusive types and 100 for the
    /// others; equal ranks follow the order of this list, so list the strongest
    /// identifiers (email, phone) before the weak, shared ones (device, cookie).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
}

fn yes() -> bool {
    true
}

/// Built-in normalizations (docs/design.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NormalizePreset {
    /// Trimmed and lower-cased.
    Email,
    /// E.164, national numbers completed with the pipeline's default region.
    Phone,
    /// Trimmed and lower-cased (device ids, cookies).
    Lowercase,
    /// Trimmed only (the default for other types).
    #[default]
    Trim,
    /// Exactly as received.
    None,
}

/// An extra normalization step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum NormalizeRule {
    Trim,
    Lowercase,
    Uppercase,
    /// Keep only ASCII digits.
    DigitsOnly,
    /// Remove this prefix when present.
    StripPrefix(String),
    /// Replace every match of `pattern` with `replacement` (`$1` refers to groups).
    RegexReplace(RegexReplace),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegexReplace {
    /// A regular expression (Rust `regex` syntax: no look-around or back-references).
    pub pattern: String,
    /// What each match becomes; `$1` or `${name}` insert a group (default: nothing).
    #[serde(default)]
    pub replacement: String,
}

/// Generic-identifier detection (docs/design.md §3.4): a value shared across more
/// distinct exclusive identifiers than the type's limit allows (a family tablet,
/// `test@test.com`) stops counting as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenericDetectionSpec {
    /// Whether values shared by too many distinct people (a call-centre
    /// phone number, a shared family email) stop linking (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for GenericDetectionSpec {
    fn default() -> Self {
        Self { enabled: true }
    }
}
