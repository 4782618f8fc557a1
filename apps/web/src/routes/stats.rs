//! Statistics: totals and a chart of counts and bytes by type.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::AppState;
use crate::api::Stats;
use crate::chart::{self, Bar};
use crate::error::PageError;
use crate::format::{self, Kind};
use crate::views::{Layout, Section, html};

struct Card {
    label: &'static str,
    value: String,
}

struct TypeRow {
    label: &'static str,
    kind: &'static str,
    count: String,
    bytes: String,
}

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage {
    layout: Layout,
    cards: Vec<Card>,
    count_chart: String,
    bytes_chart: String,
    rows: Vec<TypeRow>,
    /// Set when the summary's bytes by type do not cover the files (an API without them).
    partial: Option<String>,
    empty: bool,
}

/// `GET /stats`.
pub async fn page(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    let stats = app.api.stats().await?;
    let bytes_by_kind = bytes_by_kind(&stats);
    let counts = counts_by_kind(&stats);

    let count_bars = bars(counts, format::count);
    let byte_bars = bars(bytes_by_kind, format::size);
    let rows = Kind::ALL
        .iter()
        .zip(counts.iter().zip(bytes_by_kind))
        .map(|(kind, (count, bytes))| TypeRow {
            label: kind.plural(),
            kind: kind.slug(),
            count: format::count(*count),
            bytes: format::size(bytes),
        })
        .collect();
    let cards = vec![
        Card {
            label: "Files",
            value: format::count(stats.total_files),
        },
        Card {
            label: "Total size",
            value: format::size(stats.total_size),
        },
        Card {
            label: "Average size",
            value: format::size(stats.avg_file_size),
        },
        Card {
            label: "Largest file",
            value: format::size(stats.max_file_size),
        },
        Card {
            label: "Smallest file",
            value: format::size(stats.min_file_size),
        },
    ];
    let view = StatsPage {
        layout: Layout::new("Statistics", Section::Stats, &headers),
        cards,
        count_chart: chart::horizontal_bars("chart-count", "Number of files by type", &count_bars),
        bytes_chart: chart::horizontal_bars("chart-bytes", "Storage used by type", &byte_bars),
        rows,
        partial: (bytes_by_kind.iter().sum::<u64>() != stats.total_size)
            .then(|| "This API does not report storage by type.".to_owned()),
        empty: stats.total_files == 0,
    };
    Ok(html(StatusCode::OK, &view))
}

/// One bar per kind; `values` in `Kind::ALL` order, labelled with `text`.
fn bars(values: [u64; 4], text: fn(u64) -> String) -> Vec<Bar> {
    Kind::ALL
        .iter()
        .zip(values)
        .map(|(kind, n)| Bar {
            label: kind.plural().into(),
            value: n,
            value_text: text(n),
            class: kind.slug(),
        })
        .collect()
}

/// Counts in `Kind::ALL` order; "other" is what the summary's three counts leave.
fn counts_by_kind(stats: &Stats) -> [u64; 4] {
    let known = stats.image_count + stats.pdf_count + stats.text_count;
    [
        stats.image_count,
        stats.pdf_count,
        stats.text_count,
        stats.total_files.saturating_sub(known),
    ]
}

/// Bytes in `Kind::ALL` order, as the summary reports them.
fn bytes_by_kind(stats: &Stats) -> [u64; 4] {
    [
        stats.image_size,
        stats.pdf_size,
        stats.text_size,
        stats.other_size,
    ]
}
