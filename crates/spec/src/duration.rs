//! Durations as the stack file writes them: `"30s"`, `"5m"`, `"1h30m"`, `"250ms"`.
//!
//! A bare integer is refused (is `30` seconds or minutes?), with a hint that shows the
//! string form. The resolved stack carries [`std::time::Duration`].

use std::time::Duration;

/// Parses `"1h30m"`, `"30s"`, `"250ms"`, `"0s"`; units are `ms`, `s`, `m`, `h`, `d`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a duration cannot be empty".into());
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "`{text}` is not a duration: expected a number before each unit"
            ));
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let number: u128 = number
            .parse()
            .map_err(|_| format!("`{text}` is too large a duration"))?;
        let millis_per_unit: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(format!(
                    "`{text}` has a number without a unit (ms, s, m, h, d)"
                ));
            }
            other => return Err(format!("`{other}` is not a duration unit (ms, s, m, h, d)")),
        };
        total = number
            .checked_mul(millis_per_unit)
            .and_then(|ms| total.checked_add(ms))
            .filter(|ms| *ms <= u128::from(u64::MAX))
            .ok_or_else(|| format!("`{text}` is too large a duration"))?;
        rest = tail;
    }
    let millis = u64::try_from(total).map_err(|_| format!("`{text}` is too large a duration"))?;
    Ok(Duration::from_millis(millis))
}

/// The shortest exact form: `"30s"`, `"5m"`, `"1h30m"`, `"1500ms"`.
pub fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".into();
    }
    if !millis.is_multiple_of(1_000) {
        return format!("{millis}ms");
    }
    let mut secs = millis / 1_000;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// Serializes a [`Duration`] in the stack file's own notation.
pub(crate) mod serde_duration {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }
}

/// Serializes an optional [`Duration`] in the stack file's own notation.
pub(crate) mod serde_opt_duration {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format(*d)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_bad_text() {
        assert!(parse("").is_err());
        assert!(parse("30").is_err());
        assert!(parse("s").is_err());
        assert!(parse("3x").is_err());
        assert!(parse("-3s").is_err());
        assert!(parse("99999999999999999999999d").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for text in ["30s", "5m", "1h30m", "1500ms", "0s", "2d", "1m1s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
