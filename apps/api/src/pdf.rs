//! PDF page count and text with `lopdf`. Blocking: call from `spawn_blocking`.
//!
//! Parser crates can panic on hostile input; every call runs under `catch_unwind` so that a
//! malformed file is a 422, never a crashed worker.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::{Value, json};

/// Ceiling on decompressed content streams while extracting text (zip-bomb guard).
const MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;

/// Why a PDF cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PdfFailure {
    #[error("the PDF is malformed")]
    Malformed(#[source] lopdf::Error),
    #[error("the PDF is encrypted")]
    Encrypted,
    #[error("the PDF has no pages")]
    NoPages,
    #[error("the PDF parser gave up on this file")]
    ParserPanicked,
}

fn guarded<T>(work: impl FnOnce() -> Result<T, PdfFailure>) -> Result<T, PdfFailure> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or(Err(PdfFailure::ParserPanicked))
}

fn load(bytes: &[u8]) -> Result<lopdf::Document, PdfFailure> {
    let document = lopdf::Document::load_mem(bytes).map_err(PdfFailure::Malformed)?;
    if document.is_encrypted() {
        return Err(PdfFailure::Encrypted);
    }
    Ok(document)
}

/// `{type: "pdf", pages, version, fileSize}`.
pub fn metadata(bytes: &[u8]) -> Result<Value, PdfFailure> {
    guarded(|| {
        let document = load(bytes)?;
        let pages = document.get_pages().len();
        if pages == 0 {
            return Err(PdfFailure::NoPages);
        }
        Ok(json!({
            "type": "pdf",
            "pages": pages,
            "version": document.version,
            "fileSize": bytes.len(),
        }))
    })
}

/// The text of every page, in order.
pub fn extract_text(bytes: &[u8]) -> Result<(String, usize), PdfFailure> {
    guarded(|| {
        let document = load(bytes)?;
        let pages: Vec<u32> = document.get_pages().keys().copied().collect();
        let text = document
            .extract_text_with_limit(&pages, MAX_DECOMPRESSED)
            .map_err(PdfFailure::Malformed)?;
        Ok((text, pages.len()))
    })
}

/// A one-page PDF showing `text` (Helvetica), with a correct cross-reference table.
/// For tests; `text` must not contain `(`, `)` or `\`.
#[cfg(test)]
pub fn sample(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 24 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", index + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pages_and_text_of_a_valid_pdf() {
        let bytes = sample("Hello Berth");
        let meta = metadata(&bytes).unwrap();
        assert_eq!(meta["pages"], 1);
        let (text, pages) = extract_text(&bytes).unwrap();
        assert_eq!(pages, 1);
        assert!(text.contains("Hello Berth"), "{text:?}");
    }

    #[test]
    fn malformed_pdfs_are_errors_not_panics() {
        for bytes in [
            b"%PDF-1.4\nthis is not a pdf".to_vec(),
            sample("x")[..60].to_vec(),
            b"%PDF-".to_vec(),
        ] {
            assert!(metadata(&bytes).is_err());
        }
    }
}
