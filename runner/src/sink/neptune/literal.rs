//! Gremlin string literals: the only way an event's value ever reaches a
//! query. A value becomes one single-quoted literal in which the backslash,
//! the quote and every control character are escaped, read back intact by
//! both Groovy (what Gremlin Server evaluates a script with) and the
//! `gremlin-lang` grammar Neptune parses. Nothing else of an event is ever
//! put into query text: ids are derived hashes, labels and property names
//! are Kith's own or pass [`is_plain_name`].

/// `value` as a single-quoted Gremlin string literal.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    push_quoted(&mut out, value);
    out
}

/// Appends `value` as a single-quoted Gremlin string literal.
pub fn push_quoted(out: &mut String, value: &str) {
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            // Other control characters, DEL, and the line and paragraph
            // separators (line ends to some parsers) as \uXXXX.
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// Whether a name (an edge label from a relationship type) can be used as
/// is; anything else is quoted anyway, this only says whether it reads well.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_backslashes_and_control_characters_are_escaped() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), r"'it\'s'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
        assert_eq!(quote("a\nb\tc\rd"), r"'a\nb\tc\rd'");
        assert_eq!(quote("\u{0}\u{1b}\u{7f}"), r"'\u0000\u001b\u007f'");
        assert_eq!(quote("\u{2028}"), r"'\u2028'");
        assert_eq!(quote("🦀 ünï"), "'🦀 ünï'");
        // Gremlin syntax stays inside the literal.
        assert_eq!(quote("'); g.V().drop(); //"), r"'\'); g.V().drop(); //'");
        // No interpolation: `$` and `"` have no meaning in single quotes.
        assert_eq!(quote("${x} \"q\""), "'${x} \"q\"'");
    }

    #[test]
    fn a_literal_never_ends_early() {
        // Whatever the value, the only unescaped quotes are the two ends.
        for v in ["'", "\\'", "\\\\'", "a'b'c", "\\", "x\\"] {
            let q = quote(v);
            let inner = &q[1..q.len() - 1];
            let mut escaped = false;
            for c in inner.chars() {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else {
                    assert_ne!(c, '\'', "{v:?} -> {q}");
                }
            }
            assert!(!escaped, "{v:?} ends inside an escape: {q}");
        }
    }
}
