use serde::{Deserialize, Serialize};

/// Where observations come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum SourceSpec {
    /// A file of JSON lines; `--input` on the command line takes precedence.
    File {
        path: String,
        #[serde(default)]
        format: InputFormat,
    },
    /// Standard input, JSON lines.
    Stdin {
        #[serde(default)]
        format: InputFormat,
    },
}

impl SourceSpec {
    pub fn format(&self) -> InputFormat {
        match self {
            SourceSpec::File { format, .. } | SourceSpec::Stdin { format } => *format,
        }
    }
}

/// What each input line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InputFormat {
    /// Canonical observations (DESIGN §2).
    #[default]
    Canonical,
    /// Raw domain events mapped by the pipeline's `template`.
    Template,
}

/// Where the runner writes what is not profile state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutputsSpec {
    /// Dead-letter file (JSON lines). Default: `dead-letter.jsonl` in the state directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
    /// Change feed file (JSON lines of profile created/updated/merged/split/deleted).
    /// Default: `changes.jsonl` in the state directory; `"-"` writes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_feed: Option<String>,
}
