//! What a file is, judged from its bytes (magic numbers), never from what the client says.

/// The types this API recognises from content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    Jpeg,
    Png,
    Gif,
    Webp,
    Bmp,
    Tiff,
    Pdf,
    Text,
}

/// Broad family, for metadata and the stats' counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Image,
    Pdf,
    Text,
}

impl FileType {
    pub const ALL: [FileType; 8] = [
        FileType::Jpeg,
        FileType::Png,
        FileType::Gif,
        FileType::Webp,
        FileType::Bmp,
        FileType::Tiff,
        FileType::Pdf,
        FileType::Text,
    ];

    /// The original's `ALLOWED_FILE_TYPES` default.
    pub const DEFAULT_ALLOWED: [FileType; 6] = [
        FileType::Jpeg,
        FileType::Png,
        FileType::Gif,
        FileType::Webp,
        FileType::Pdf,
        FileType::Text,
    ];

    pub fn mime(self) -> &'static str {
        match self {
            FileType::Jpeg => "image/jpeg",
            FileType::Png => "image/png",
            FileType::Gif => "image/gif",
            FileType::Webp => "image/webp",
            FileType::Bmp => "image/bmp",
            FileType::Tiff => "image/tiff",
            FileType::Pdf => "application/pdf",
            FileType::Text => "text/plain",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            FileType::Jpeg => "jpg",
            FileType::Png => "png",
            FileType::Gif => "gif",
            FileType::Webp => "webp",
            FileType::Bmp => "bmp",
            FileType::Tiff => "tiff",
            FileType::Pdf => "pdf",
            FileType::Text => "txt",
        }
    }

    pub fn family(self) -> Family {
        match self {
            FileType::Pdf => Family::Pdf,
            FileType::Text => Family::Text,
            _ => Family::Image,
        }
    }

    /// A MIME type as clients and configuration spell it (aliases included, parameters
    /// such as `; charset=utf-8` ignored).
    pub fn from_mime(mime: &str) -> Option<FileType> {
        FileType::from_essence(&essence(mime))
    }

    /// A MIME type already reduced by [`essence`].
    fn from_essence(essence: &str) -> Option<FileType> {
        Some(match essence {
            "image/jpeg" | "image/jpg" | "image/pjpeg" => FileType::Jpeg,
            "image/png" | "image/x-png" | "image/apng" => FileType::Png,
            "image/gif" => FileType::Gif,
            "image/webp" => FileType::Webp,
            "image/bmp" | "image/x-bmp" | "image/x-ms-bmp" => FileType::Bmp,
            "image/tiff" | "image/tif" => FileType::Tiff,
            "application/pdf" | "application/x-pdf" => FileType::Pdf,
            "text/plain" => FileType::Text,
            _ => return None,
        })
    }
}

/// Recognise `content` by its magic bytes; text is UTF-8 without binary control characters.
pub fn sniff(content: &[u8]) -> Option<FileType> {
    let starts = |magic: &[u8]| content.starts_with(magic);
    if starts(b"\xFF\xD8\xFF") {
        Some(FileType::Jpeg)
    } else if starts(b"\x89PNG\r\n\x1A\n") {
        Some(FileType::Png)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some(FileType::Gif)
    } else if content.len() >= 12 && starts(b"RIFF") && &content[8..12] == b"WEBP" {
        Some(FileType::Webp)
    } else if starts(b"BM") && content.len() >= 26 && bmp_header_plausible(content) {
        Some(FileType::Bmp)
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Some(FileType::Tiff)
    } else if pdf_header_offset(content).is_some() {
        Some(FileType::Pdf)
    } else if looks_like_text(content) {
        Some(FileType::Text)
    } else {
        None
    }
}

/// Whether what the client declared agrees with what the bytes are. A missing or generic
/// declaration (`application/octet-stream`) agrees with anything; any `text/*` agrees with
/// plain text (browsers call a CSV `text/csv`).
pub fn declared_agrees(declared: Option<&str>, found: FileType) -> bool {
    let Some(declared) = declared.map(str::trim).filter(|d| !d.is_empty()) else {
        return true;
    };
    let essence = essence(declared);
    if essence == "application/octet-stream" {
        return true;
    }
    if found == FileType::Text && essence.starts_with("text/") {
        return true;
    }
    FileType::from_essence(&essence) == Some(found)
}

/// A MIME type without its parameters (`; charset=utf-8`), trimmed and in lower case.
fn essence(mime: &str) -> String {
    mime.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn bmp_header_plausible(content: &[u8]) -> bool {
    // The DIB header size at offset 14 is one of the few defined sizes.
    let dib = u32::from_le_bytes([content[14], content[15], content[16], content[17]]);
    matches!(dib, 12 | 40 | 52 | 56 | 64 | 108 | 124)
}

/// PDF readers accept the header within the first KiB.
fn pdf_header_offset(content: &[u8]) -> Option<usize> {
    let head = &content[..content.len().min(1024)];
    head.windows(5).position(|w| w == b"%PDF-")
}

fn looks_like_text(content: &[u8]) -> bool {
    if content.is_empty() {
        return true;
    }
    let Ok(text) = std::str::from_utf8(content) else {
        return false;
    };
    !text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_magic_numbers() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1A\n...."), Some(FileType::Png));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0"), Some(FileType::Jpeg));
        assert_eq!(sniff(b"GIF89a...."), Some(FileType::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(FileType::Webp));
        assert_eq!(sniff(b"%PDF-1.4\n"), Some(FileType::Pdf));
        assert_eq!(sniff("héllo, wörld\n".as_bytes()), Some(FileType::Text));
        assert_eq!(sniff(b"MZ\x90\0\x03\0\0\0"), None);
        assert_eq!(sniff(b"\0\x01\x02binary"), None);
    }

    #[test]
    fn declarations_must_agree_with_content() {
        assert!(declared_agrees(None, FileType::Png));
        assert!(declared_agrees(
            Some("application/octet-stream"),
            FileType::Pdf
        ));
        assert!(declared_agrees(Some("image/jpg"), FileType::Jpeg));
        assert!(declared_agrees(Some("text/csv"), FileType::Text));
        assert!(declared_agrees(
            Some("text/plain; charset=utf-8"),
            FileType::Text
        ));
        assert!(!declared_agrees(Some("image/png"), FileType::Pdf));
        assert!(!declared_agrees(Some("application/pdf"), FileType::Text));
    }
}
