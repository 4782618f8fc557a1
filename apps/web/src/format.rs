//! How numbers, dates and types read on the pages.

/// A byte count for people: `0 B`, `512 B`, `1.5 KiB`, `10 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    // One decimal below 10, none above; drop a trailing ".0" (10 MiB, not 10.0 MiB).
    let text = if value < 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    };
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[unit])
}

/// A count with thousands separators: `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A timestamp from the API (RFC 3339) as `26 Nov 2026, 23:40 UTC`; unparsable text as is.
pub fn date(timestamp: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(timestamp) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%-d %b %Y, %H:%M UTC")
            .to_string(),
        Err(_) => timestamp.to_owned(),
    }
}

/// The broad kind of a file, which decides its icon, its tools and its chart bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Pdf,
    Text,
    Other,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Image, Kind::Pdf, Kind::Text, Kind::Other];

    pub fn of(mime: &str) -> Self {
        let mime = mime.trim().to_ascii_lowercase();
        if mime.starts_with("image/") {
            Kind::Image
        } else if mime == "application/pdf" {
            Kind::Pdf
        } else if mime.starts_with("text/") {
            Kind::Text
        } else {
            Kind::Other
        }
    }

    /// A plural label for charts and summaries.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Image => "Images",
            Kind::Pdf => "PDFs",
            Kind::Text => "Text files",
            Kind::Other => "Other",
        }
    }

    /// A CSS class suffix (`kind-image`...).
    pub fn slug(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Pdf => "pdf",
            Kind::Text => "text",
            Kind::Other => "other",
        }
    }
}

/// A short type label: `PNG`, `JPEG`, `PDF`, `Text`, or the MIME type itself.
pub fn type_label(mime: &str) -> String {
    let mime = mime.trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/pdf" => "PDF".into(),
        "text/plain" => "Text".into(),
        "image/jpeg" => "JPEG".into(),
        "image/webp" => "WebP".into(),
        "image/svg+xml" => "SVG".into(),
        _ => match mime.strip_prefix("image/") {
            Some(sub) => sub.to_ascii_uppercase(),
            None => mime,
        },
    }
}

/// A metadata key from the API (`hasAlpha`, `colorSpace`, `page_count`) as a label.
pub fn metadata_label(key: &str) -> String {
    match key {
        "hasAlpha" => return "Transparency".into(),
        "colorSpace" | "space" => return "Colour space".into(),
        "density" => return "Density (DPI)".into(),
        "fileSize" => return "File size".into(),
        _ => {}
    }
    let mut words = String::new();
    for (i, c) in key.chars().enumerate() {
        if c == '_' || c == '-' {
            words.push(' ');
        } else if c.is_uppercase() && i > 0 {
            words.push(' ');
            words.extend(c.to_lowercase());
        } else if i == 0 {
            words.extend(c.to_uppercase());
        } else {
            words.push(c);
        }
    }
    words
}

/// A metadata value as text: booleans as yes/no, nested values as compact JSON.
pub fn metadata_value(key: &str, value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Bool(true) => "Yes".into(),
        Value::Bool(false) => "No".into(),
        Value::Number(n) if key == "fileSize" => n.as_u64().map(size).unwrap_or(n.to_string()),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Null => "–".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1 KiB");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(10 * 1024 * 1024), "10 MiB");
        assert_eq!(size(123 * 1024 * 1024 + 5), "123 MiB");
        assert_eq!(size(u64::MAX), "16384 PiB");
    }

    #[test]
    fn counts_group_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
    }

    #[test]
    fn dates_are_utc_and_garbage_passes_through() {
        assert_eq!(date("2026-11-26T23:40:12.345Z"), "26 Nov 2026, 23:40 UTC");
        assert_eq!(date("2026-11-27T01:40:00+02:00"), "26 Nov 2026, 23:40 UTC");
        assert_eq!(date("yesterday"), "yesterday");
    }

    #[test]
    fn kinds_and_labels() {
        assert_eq!(Kind::of("image/png"), Kind::Image);
        assert_eq!(Kind::of("Application/PDF"), Kind::Pdf);
        assert_eq!(Kind::of("text/plain"), Kind::Text);
        assert_eq!(Kind::of("application/zip"), Kind::Other);
        assert_eq!(type_label("image/webp"), "WebP");
        assert_eq!(type_label("image/gif"), "GIF");
        assert_eq!(type_label("application/pdf"), "PDF");
        assert_eq!(metadata_label("hasAlpha"), "Transparency");
        assert_eq!(metadata_label("page_count"), "Page count");
        assert_eq!(metadata_label("detectedMimeType"), "Detected mime type");
        assert_eq!(
            metadata_value("fileSize", &serde_json::json!(2048)),
            "2 KiB"
        );
        assert_eq!(metadata_value("hasAlpha", &serde_json::json!(false)), "No");
    }
}
