//! Checkpoint settings validated into typed values.

use super::ConfigError;
use kith_api::pipeline::CheckpointSpec;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoints {
    /// Object storage checkpoints are copied to; none keeps them in the state
    /// directory only.
    pub url: Option<String>,
    pub interval: Duration,
    pub retain: u32,
    pub savepoint_url: Option<String>,
}

/// The longest checkpoint interval: a day without a restore point is
/// already more replay than anyone wants, and every deadline derived from
/// the interval (timers, transaction timeouts) stays far from overflowing.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

impl Checkpoints {
    pub fn from_spec(spec: &CheckpointSpec) -> Result<Self, ConfigError> {
        let interval = parse_duration(&spec.interval)
            .filter(|d| *d >= Duration::from_millis(10) && *d <= MAX_INTERVAL)
            .ok_or_else(|| {
                ConfigError::invalid(
                    "checkpoints.interval",
                    format!(
                        "`{}` is not a duration between 10ms and 24h; write it as `500ms`, `10s` or `2m`",
                        spec.interval
                    ),
                )
            })?;
        if spec.retain == 0 {
            return Err(ConfigError::invalid(
                "checkpoints.retain",
                "must keep at least 1 checkpoint",
            ));
        }
        let non_empty = |v: &Option<String>, field: &str| match v {
            Some(u) if u.trim().is_empty() => Err(ConfigError::invalid(
                field,
                "must not be empty: give `file:///path`, a local path or `s3://bucket/prefix`",
            )),
            other => Ok(other.clone()),
        };
        Ok(Checkpoints {
            url: non_empty(&spec.url, "checkpoints.url")?,
            interval,
            retain: spec.retain,
            savepoint_url: non_empty(&spec.savepoint_url, "checkpoints.savepointUrl")?,
        })
    }
}

/// `500ms`, `10s`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    // A value too large for a Duration is not a duration (never a panic).
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_units_users_write() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("10 days"), None);
        assert_eq!(parse_duration("99999999999999999999999s"), None);
        assert_eq!(parse_duration("1e400"), None);
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn a_bad_interval_names_the_field_and_the_forms() {
        let spec = CheckpointSpec {
            interval: "often".into(),
            ..Default::default()
        };
        let e = Checkpoints::from_spec(&spec).unwrap_err().to_string();
        assert!(
            e.contains("checkpoints.interval") && e.contains("10s"),
            "{e}"
        );
    }
}
