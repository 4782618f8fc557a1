//! File names as clients send them, made safe to store and to put in headers.

/// Longest name kept, in characters (filesystems allow 255 bytes; we count characters so
/// that non-Latin names are not penalised).
pub const MAX_NAME_CHARS: usize = 255;

/// Why a client's file name is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the file name is {chars} characters long; the limit is {MAX_NAME_CHARS}")]
    TooLong { chars: usize },
}

/// The last path component of `raw` (either slash), without control characters or
/// surrounding spaces; `upload` when nothing usable is left. UTF-8 is kept as is.
pub fn sanitize(raw: &str) -> Result<String, NameError> {
    let last = raw
        .rsplit(['/', '\\'])
        .find(|part| !part.trim().is_empty())
        .unwrap_or("");
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    let name = if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        "upload".to_owned()
    } else {
        cleaned.to_owned()
    };
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(NameError::TooLong { chars });
    }
    Ok(name)
}

/// `name` without its last extension (`photo.tar.gz` -> `photo.tar`; `README` -> `README`;
/// `.profile` -> `.profile`).
pub fn stem(name: &str) -> &str {
    match name.rfind('.') {
        Some(0) | None => name,
        Some(dot) => &name[..dot],
    }
}

/// `name` with its extension replaced by `extension`.
pub fn with_extension(name: &str, extension: &str) -> String {
    format!("{}.{extension}", stem(name))
}

/// `Content-Disposition: attachment` with an ASCII fallback and the exact UTF-8 name
/// (RFC 6266 / RFC 5987).
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_path_components_and_controls() {
        assert_eq!(sanitize("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(sanitize("C:\\Users\\me\\photo.png").unwrap(), "photo.png");
        assert_eq!(sanitize("a\u{0}b\nc.txt").unwrap(), "abc.txt");
        assert_eq!(sanitize("..").unwrap(), "upload");
        assert_eq!(sanitize("dir/").unwrap(), "dir");
        assert_eq!(sanitize("").unwrap(), "upload");
    }

    #[test]
    fn keeps_utf8_and_limits_length() {
        assert_eq!(sanitize("résumé 東京.pdf").unwrap(), "résumé 東京.pdf");
        let long = format!("{}.png", "a".repeat(300));
        assert_eq!(sanitize(&long), Err(NameError::TooLong { chars: 304 }));
        let cjk = "東".repeat(200);
        assert!(sanitize(&cjk).is_ok(), "600 bytes but 200 characters");
    }

    #[test]
    fn stems_and_extensions() {
        assert_eq!(with_extension("photo.png", "webp"), "photo.webp");
        assert_eq!(with_extension("README", "png"), "README.png");
        assert_eq!(with_extension(".hidden", "png"), ".hidden.png");
    }

    #[test]
    fn disposition_has_both_forms() {
        assert_eq!(
            content_disposition("naïve \"x\".txt"),
            "attachment; filename=\"na_ve _x_.txt\"; filename*=UTF-8''na%C3%AFve%20%22x%22.txt"
        );
    }
}
