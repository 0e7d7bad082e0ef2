//! Hand-written JSON for the lines the runner writes by the million (change
//! feed, generated workloads), where building `serde_json` values would cost
//! more than the work itself.

/// Appends `s` as a JSON string literal, quotes included (RFC 8259 escaping,
/// byte for byte what `serde_json` writes).
pub fn write_string(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[(b >> 4) as usize]);
            buf.push(HEX[(b & 0xf) as usize]);
        } else {
            buf.extend_from_slice(escape);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::write_string;

    #[test]
    fn strings_are_escaped_like_serde_json() {
        for s in [
            "plain",
            "quote\"back\\slash",
            "tab\tnew\nline\r",
            "\u{1}\u{1f}\u{8}\u{c}",
            "ünï €",
            "",
        ] {
            let mut out = Vec::new();
            write_string(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }
}
