//! Phone numbers to E.164. Placeholder table: North America only, to be
//! completed with the regions listed in `Region::supported`.

/// A default region for national phone numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    calling_code: u16,
}

impl Region {
    pub fn parse(iso: &str) -> Option<Region> {
        match iso.to_ascii_uppercase().as_str() {
            "US" | "CA" => Some(Region { calling_code: 1 }),
            _ => None,
        }
    }

    pub fn supported() -> Vec<&'static str> {
        vec!["US", "CA"]
    }
}

pub fn to_e164(raw: &str, region: Region) -> Option<String> {
    let trimmed = raw.trim();
    let international = trimmed.starts_with('+') || trimmed.starts_with("00");
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if international {
        let digits = if trimmed.starts_with("00") { digits[2..].to_string() } else { digits };
        return (8..=15).contains(&digits.len()).then(|| format!("+{digits}"));
    }
    match (region.calling_code, digits.len()) {
        (1, 10) => Some(format!("+1{digits}")),
        (1, 11) if digits.starts_with('1') => Some(format!("+{digits}")),
        _ => None,
    }
}
