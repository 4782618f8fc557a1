//! Bar charts as inline SVG, drawn on the server so they need no JavaScript.

use std::fmt::Write;

/// One bar: a label, the value that sets its length, and how the value reads.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: u64,
    pub value_text: String,
    /// CSS class suffix giving the bar its colour (`bar-image`...).
    pub class: &'static str,
}

// Narrow enough that labels stay readable when a phone scales the chart down.
const WIDTH: u32 = 400;
const LABEL_WIDTH: u32 = 96;
const VALUE_WIDTH: u32 = 80;
const ROW: u32 = 40;
const BAR_HEIGHT: u32 = 24;

/// A horizontal bar chart. `id` must be unique in the page: the chart's title and description
/// are referenced by id so screen readers announce them, and the description lists every value.
pub fn horizontal_bars(id: &str, title: &str, bars: &[Bar]) -> String {
    let height = ROW * bars.len().max(1) as u32 + 8;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0);
    let track = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    let description = bars
        .iter()
        .map(|b| format!("{}: {}", b.label, b.value_text))
        .collect::<Vec<_>>()
        .join(", ");

    let mut svg = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        svg,
        r#"<svg class="chart" id="{id}" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        escape(title),
        escape(&description),
    );
    for (i, bar) in bars.iter().enumerate() {
        let top = i as u32 * ROW + 4;
        let length = if max == 0 {
            0
        } else {
            // At least 2px so a non-zero value is visible next to a huge one.
            ((bar.value as f64 / max as f64) * f64::from(track)).round() as u32
        };
        let length = if bar.value > 0 { length.max(2) } else { 0 };
        let text_y = top + BAR_HEIGHT / 2 + 5;
        let _ = write!(
            svg,
            r#"<g class="bar bar-{class}"><text class="bar-label" x="0" y="{text_y}">{label}</text><rect class="bar-track" x="{LABEL_WIDTH}" y="{top}" width="{track}" height="{BAR_HEIGHT}" rx="6"/><rect class="bar-fill" x="{LABEL_WIDTH}" y="{top}" width="{length}" height="{BAR_HEIGHT}" rx="6"/><text class="bar-value" x="{value_x}" y="{text_y}">{value}</text></g>"#,
            class = bar.class,
            label = escape(&bar.label),
            value_x = LABEL_WIDTH + track + 10,
            value = escape(&bar.value_text),
        );
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, value: u64) -> Bar {
        Bar {
            label: label.into(),
            value,
            value_text: value.to_string(),
            class: "image",
        }
    }

    fn widths(svg: &str) -> Vec<u32> {
        svg.split(r#"class="bar-fill""#)
            .skip(1)
            .map(|rest| {
                let start = rest.find("width=\"").unwrap() + 7;
                let end = start + rest[start..].find('"').unwrap();
                rest[start..end].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn bars_are_proportional_to_the_largest() {
        let svg = horizontal_bars("c", "Files", &[bar("a", 10), bar("b", 5), bar("c", 0)]);
        let track = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
        assert_eq!(widths(&svg), vec![track, track / 2, 0]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"<desc id="c-desc">a: 10, b: 5, c: 0</desc>"#));
    }

    #[test]
    fn tiny_values_stay_visible_and_empty_charts_draw() {
        let svg = horizontal_bars("c", "Files", &[bar("a", 1_000_000), bar("b", 1)]);
        assert_eq!(widths(&svg)[1], 2);
        let svg = horizontal_bars("c", "Files", &[]);
        assert!(svg.contains("</svg>"));
    }

    #[test]
    fn text_is_escaped() {
        let svg = horizontal_bars("c", "<b>&", &[bar("\"x\"", 1)]);
        assert!(svg.contains("&lt;b&gt;&amp;"));
        assert!(svg.contains("&quot;x&quot;"));
        assert!(!svg.contains("<b>"));
    }
}
