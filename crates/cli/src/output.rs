//! Everything the CLI shows: text, tables that fit the terminal, JSON, colour.
//!
//! Colour only on a terminal and only without `NO_COLOR`; tables shrink their widest
//! columns to fit the terminal's width (`COLUMNS`, else the terminal's size, else 100).

use std::io::{IsTerminal, Write};

use serde::Serialize;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Text and tables for people.
    #[default]
    Text,
    /// One JSON document on stdout, for scripts.
    Json,
}

/// Whether to colour output written to `stream`.
pub fn color_enabled_for(stream: &impl IsTerminal) -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && stream.is_terminal()
}

/// Where and how the CLI prints.
#[derive(Debug, Clone)]
pub struct Output {
    pub format: Format,
    stdout_color: bool,
    stderr_color: bool,
    width: usize,
}

impl Output {
    pub fn detect(format: Format) -> Output {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse::<usize>().ok())
            .or_else(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
            .unwrap_or(100)
            .max(20);
        Output {
            format,
            stdout_color: color_enabled_for(&std::io::stdout()),
            stderr_color: color_enabled_for(&std::io::stderr()),
            width,
        }
    }

    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// The terminal's width in columns.
    pub fn width(&self) -> usize {
        self.width
    }

    pub fn stderr_color(&self) -> bool {
        self.stderr_color
    }

    /// Styling for text printed on stdout.
    pub fn style(&self) -> Style {
        Style {
            enabled: self.stdout_color,
        }
    }

    /// Styling for text printed on stderr.
    pub fn stderr_style(&self) -> Style {
        Style {
            enabled: self.stderr_color,
        }
    }

    /// Prints a line on stdout.
    pub fn line(&self, text: impl AsRef<str>) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", text.as_ref());
    }

    /// Prints text on stdout as is.
    pub fn text(&self, text: impl AsRef<str>) {
        let _ = std::io::stdout().lock().write_all(text.as_ref().as_bytes());
    }

    /// Prints a note on stderr (progress and hints that scripts should not parse).
    pub fn note(&self, text: impl AsRef<str>) {
        let _ = writeln!(std::io::stderr().lock(), "{}", text.as_ref());
    }

    /// Prints `value` as pretty JSON on stdout.
    pub fn json<T: Serialize + ?Sized>(&self, value: &T) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
        Ok(())
    }

    /// Prints a table on stdout, fitted to the terminal.
    pub fn table(&self, table: &Table) {
        self.text(table.render(self.width, self.style()));
    }
}

/// A few ANSI styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    Bold,
    Dim,
    Red,
    Green,
    Yellow,
}

/// Applies [`Paint`]s when colour is enabled, else returns the text unchanged.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub enabled: bool,
}

impl Style {
    pub fn paint(&self, paint: Paint, text: impl AsRef<str>) -> String {
        let text = text.as_ref();
        if !self.enabled {
            return text.to_owned();
        }
        let code = match paint {
            Paint::Bold => "1",
            Paint::Dim => "2",
            Paint::Red => "31",
            Paint::Green => "32",
            Paint::Yellow => "33",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// A text table: a header row and rows of cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    /// The last column wraps onto more lines instead of being cut (advice, messages).
    wrap_last: bool,
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
            wrap_last: false,
        }
    }

    /// Wraps the last column's cells at spaces to the width the other columns leave (at
    /// least [`MIN_WRAPPED`] columns) instead of cutting them with `…`.
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    pub fn wrap_last(&mut self) -> &mut Table {
        self.wrap_last = true;
        self
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Table {
        let mut cells: Vec<String> = cells.into_iter().map(Into::into).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
        self
    }

    /// Renders with two spaces between columns, shrinking the widest columns (cells end
    /// in `…`) until the table fits in `width`.
    pub fn render(&self, width: usize, style: Style) -> String {
        let columns = self.headers.len();
        if columns == 0 {
            return String::new();
        }
        let len = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| len(&r[c]))
                    .chain([len(&self.headers[c])])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let gaps = 2 * (columns - 1);
        if self.wrap_last && columns > 1 {
            return self.render_wrapped(widths, width, style);
        }
        while widths.iter().sum::<usize>() + gaps > width {
            let Some((widest, w)) = widths.iter().copied().enumerate().max_by_key(|(_, w)| *w)
            else {
                break;
            };
            if w <= 4 {
                break;
            }
            widths[widest] = w - 1;
        }
        let mut out = String::new();
        let render_row = |out: &mut String, cells: &[String], header: bool| {
            let mut line = String::new();
            for (c, cell) in cells.iter().enumerate() {
                let fitted = fit(cell, widths[c]);
                let padded = if c + 1 == columns {
                    fitted
                } else {
                    format!("{fitted:<w$}", w = widths[c])
                };
                line.push_str(&if header {
                    style.paint(Paint::Bold, &padded)
                } else {
                    padded
                });
                if c + 1 < columns {
                    line.push_str("  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        };
        render_row(&mut out, &self.headers, true);
        for row in &self.rows {
            render_row(&mut out, row, false);
        }
        out
    }
}

/// The narrowest a wrapped last column gets, however wide the others are.
pub const MIN_WRAPPED: usize = 20;

impl Table {
    fn render_wrapped(&self, mut widths: Vec<usize>, width: usize, style: Style) -> String {
        let columns = widths.len();
        let last = columns - 1;
        let gaps = 2 * last;
        // The other columns shrink (widest first) only as far as the wrapped one needs.
        while widths[..last].iter().sum::<usize>() + gaps + MIN_WRAPPED > width {
            let Some((widest, w)) = widths[..last]
                .iter()
                .copied()
                .enumerate()
                .max_by_key(|(_, w)| *w)
            else {
                break;
            };
            if w <= 4 {
                break;
            }
            widths[widest] = w - 1;
        }
        let room = width
            .saturating_sub(widths[..last].iter().sum::<usize>() + gaps)
            .max(MIN_WRAPPED);
        widths[last] = widths[last].min(room);
        let mut out = String::new();
        let mut render_row = |cells: &[String], header: bool| {
            let wrapped = wrap(&cells[last], widths[last]);
            for (n, tail) in wrapped.iter().enumerate() {
                let mut line = String::new();
                for (c, cell) in cells[..last].iter().enumerate() {
                    let text = if n == 0 {
                        fit(cell, widths[c])
                    } else {
                        String::new()
                    };
                    let padded = format!("{text:<w$}", w = widths[c]);
                    line.push_str(&if header && n == 0 {
                        style.paint(Paint::Bold, &padded)
                    } else {
                        padded
                    });
                    line.push_str("  ");
                }
                line.push_str(&if header {
                    style.paint(Paint::Bold, tail)
                } else {
                    tail.clone()
                });
                out.push_str(line.trim_end());
                out.push('\n');
            }
        };
        render_row(&self.headers, true);
        for row in &self.rows {
            render_row(row, false);
        }
        out
    }
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word is cut
/// into pieces); one empty line for empty text.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let used = line.chars().count();
            let gap = usize::from(used > 0);
            if used + gap + word.len() <= width {
                if gap == 1 {
                    line.push(' ');
                }
                line.extend(word.iter());
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            let rest = word.split_off(width);
            lines.push(word.iter().collect());
            word = rest;
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

fn fit(cell: &str, width: usize) -> String {
    if cell.chars().count() <= width {
        return cell.to_owned();
    }
    let mut out: String = cell.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_fits_the_width() {
        let mut table = Table::new(["NAME", "DESCRIPTION"]);
        table.row([
            "backend",
            "the File Analyzer API, built from apps/api, port 3001",
        ]);
        let rendered = table.render(30, Style { enabled: false });
        assert!(
            rendered.lines().all(|l| l.chars().count() <= 30),
            "{rendered}"
        );
        assert!(rendered.contains('…'));
        assert!(rendered.starts_with("NAME     DESCRIPTION"));
    }

    #[test]
    fn a_wrapped_last_column_keeps_every_word_within_the_width() {
        let advice = "allow TCP 5432 from ECS-SG (sg-0123456789abcdef0) in RDS-SG (`berth up -e production` restores it)";
        let mut table = Table::new(["CHECK", "STATUS", "WHAT TO CHANGE"]);
        table.wrap_last();
        table.row(["targets: RDS-SG allows 5432 from ECS-SG", "FAIL", advice]);
        table.row(["pull: image of backend", "ok", ""]);
        let rendered = table.render(80, Style { enabled: false });
        assert!(
            rendered.lines().all(|l| l.chars().count() <= 80),
            "{rendered}"
        );
        assert!(!rendered.contains('…'), "{rendered}");
        let words: Vec<&str> = rendered
            .lines()
            .skip(1)
            .flat_map(|l| l.split_whitespace())
            .collect();
        for word in advice.split(' ') {
            assert!(words.contains(&word), "{word} lost in\n{rendered}");
        }
        let lines: Vec<&str> = rendered.lines().collect();
        // Continuation lines start under the column they continue.
        let column = lines[0].find("WHAT TO CHANGE").unwrap();
        assert!(lines[2].starts_with(&" ".repeat(column)), "{rendered}");
        assert!(lines[2].len() > column, "{rendered}");
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 3), [""]);
    }

    #[test]
    fn table_keeps_short_cells() {
        let mut table = Table::new(["A", "B"]);
        table.row(["1"]);
        assert_eq!(table.render(80, Style { enabled: false }), "A  B\n1\n");
    }

    #[test]
    fn paint_is_plain_without_colour() {
        assert_eq!(Style { enabled: false }.paint(Paint::Red, "x"), "x");
        assert_eq!(
            Style { enabled: true }.paint(Paint::Red, "x"),
            "\x1b[31mx\x1b[0m"
        );
    }
}
