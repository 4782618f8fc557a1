//! `--since`: a duration back from now (`30s`, `10m`, `2h`, `1d`, `1w`) or an RFC 3339 time.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid time {text:?}: use a duration like 30s, 10m, 2h, 1d, 1w or an RFC 3339 time like 2026-11-26T10:00:00Z"
)]
pub struct SinceError {
    pub text: String,
}

/// The start time, in milliseconds since the epoch, that `text` names relative to `now`.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<i64, SinceError> {
    let error = || SinceError {
        text: text.to_owned(),
    };
    let trimmed = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(trimmed) {
        return Ok(time.timestamp_millis());
    }
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(error)?;
    let (number, unit) = trimmed.split_at(split);
    let number: i64 = number.parse().map_err(|_| error())?;
    let unit_ms: i64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(error()),
    };
    let back = number.checked_mul(unit_ms).ok_or_else(error)?;
    Ok(now.timestamp_millis().saturating_sub(back))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ms = now.timestamp_millis();
        assert_eq!(parse_since("30s", now).unwrap(), ms - 30_000);
        assert_eq!(parse_since("10m", now).unwrap(), ms - 600_000);
        assert_eq!(parse_since("2h", now).unwrap(), ms - 7_200_000);
        assert_eq!(parse_since("1d", now).unwrap(), ms - 86_400_000);
        assert_eq!(
            parse_since("2026-11-26T11:00:00+00:00", now).unwrap(),
            ms - 3_600_000
        );
        for bad in ["", "10", "m", "10x", "yesterday", "99999999999999999999d"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }
}
