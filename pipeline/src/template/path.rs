//! JSON paths of the mapping template (`$.user.emails[0]`, `$["first name"]`),
//! parsed once when the pipeline is loaded into a list of steps.
//!
//! Evaluation must never parse, allocate or fail: a step that does not apply
//! to the event (a key on an array, an index past the end) is absence, which
//! the template turns into "left out" or "missing field".

use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A parsed path, with its text kept for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

/// Why a path does not parse; positions count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum PathError {
    #[error("a path starts with `$`")]
    NoRoot,
    #[error("empty name after `.` at character {0}")]
    EmptyName(usize),
    #[error("unexpected `{found}` at character {at}")]
    Unexpected { at: usize, found: char },
    #[error("`[` at character {0} is not closed by `]`")]
    Unclosed(usize),
    #[error("`[` at character {0} must hold an index such as [0] or a quoted name such as [\"first name\"]")]
    BadBracket(usize),
    #[error("unsupported escape `\\{found}` at character {at}; only `\\\\` and the quote can be escaped")]
    BadEscape { at: usize, found: char },
}

/// What `PathError` messages end with, so the user sees the whole syntax.
pub(super) const SYNTAX: &str =
    "accepted: `$`, then any of `.name`, `[\"quoted name\"]`, `['quoted name']` and `[index]`";

impl JsonPath {
    pub(super) fn parse(text: &str) -> Result<JsonPath, PathError> {
        let column = |byte: usize| text[..byte].chars().count() + 1;
        if !text.starts_with('$') {
            return Err(PathError::NoRoot);
        }
        let b = text.as_bytes();
        let mut steps = Vec::new();
        // Invariant: `i` is always on a char boundary: it only moves past `$`,
        // `.`, `[`, `]` (ASCII) or to a boundary found by `find`/`char_indices`.
        let mut i = 1;
        while i < b.len() {
            match b[i] {
                b'.' => {
                    let start = i + 1;
                    let end = text[start..]
                        .find(['.', '['])
                        .map_or(text.len(), |n| start + n);
                    let name = &text[start..end];
                    if name.is_empty() {
                        return Err(PathError::EmptyName(column(i)));
                    }
                    if let Some((at, found)) = name
                        .char_indices()
                        .find(|(_, c)| matches!(c, ']' | '"' | '\'') || c.is_whitespace())
                    {
                        return Err(PathError::Unexpected {
                            at: column(start + at),
                            found,
                        });
                    }
                    steps.push(Step::Key(name.to_string()));
                    i = end;
                }
                b'[' => {
                    let (step, next) = parse_bracket(text, i, &column)?;
                    steps.push(step);
                    i = next;
                }
                _ => {
                    let found = text[i..].chars().next().unwrap_or('?');
                    return Err(PathError::Unexpected {
                        at: column(i),
                        found,
                    });
                }
            }
        }
        Ok(JsonPath {
            text: text.to_string(),
            steps,
        })
    }

    /// The value at this path, if every step applies.
    pub(super) fn get<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        let mut value = root;
        for step in &self.steps {
            value = match (step, value) {
                (Step::Key(k), Value::Object(map)) => map.get(k)?,
                (Step::Index(n), Value::Array(items)) => items.get(*n)?,
                _ => return None,
            };
        }
        Some(value)
    }
}

/// Parses `[0]`, `["name"]` or `['name']` starting at the `[` at byte `open`;
/// returns the step and the byte after the closing `]`.
fn parse_bracket(
    text: &str,
    open: usize,
    column: &dyn Fn(usize) -> usize,
) -> Result<(Step, usize), PathError> {
    let inner = open + 1;
    match text.as_bytes().get(inner) {
        Some(&quote @ (b'"' | b'\'')) => {
            let mut name = String::new();
            let mut chars = text[inner + 1..].char_indices();
            while let Some((at, c)) = chars.next() {
                let at = inner + 1 + at;
                if c == char::from(quote) {
                    return match text.as_bytes().get(at + 1) {
                        Some(b']') => Ok((Step::Key(name), at + 2)),
                        _ => Err(PathError::Unclosed(column(open))),
                    };
                }
                if c == '\\' {
                    match chars.next() {
                        Some((_, e)) if e == '\\' || e == char::from(quote) => name.push(e),
                        Some((_, found)) => {
                            return Err(PathError::BadEscape {
                                at: column(at),
                                found,
                            })
                        }
                        None => break,
                    }
                } else {
                    name.push(c);
                }
            }
            Err(PathError::Unclosed(column(open)))
        }
        Some(b'0'..=b'9') => {
            let digits_end = text[inner..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(text.len(), |n| inner + n);
            if text.as_bytes().get(digits_end) != Some(&b']') {
                return Err(if digits_end == text.len() {
                    PathError::Unclosed(column(open))
                } else {
                    PathError::BadBracket(column(open))
                });
            }
            let index = text[inner..digits_end]
                .parse()
                .map_err(|_| PathError::BadBracket(column(open)))?;
            Ok((Step::Index(index), digits_end + 1))
        }
        None => Err(PathError::Unclosed(column(open))),
        Some(_) => Err(PathError::BadBracket(column(open))),
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
