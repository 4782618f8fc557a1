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

#[cfg(test)]
mod tests {
    use super::*;
    use berth_testkit::fixtures::pdf as sample;

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
