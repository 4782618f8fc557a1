//! Every problem of a stack file, each pointing into the file.

use std::fmt;
use std::ops::Range;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// A label under the offending text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Byte offsets into the file.
    pub span: Range<usize>,
    pub text: String,
}

/// One problem of the stack file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A stable identifier (`berth::unknown_key`), for scripts and docs.
    pub code: &'static str,
    pub message: String,
    /// The first label is the primary one: `line` and `column` point at it.
    pub labels: Vec<Label>,
    pub help: Option<String>,
    /// 1-based; 0 when the problem has no place in the file.
    pub line: usize,
    /// 1-based, in characters; 0 when the problem has no place in the file.
    pub column: usize,
}

impl Problem {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            line: 0,
            column: 0,
        }
    }

    pub(crate) fn label(mut self, span: Range<usize>, text: impl Into<String>) -> Problem {
        self.labels.push(Label {
            span,
            text: text.into(),
        });
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }

    pub(crate) fn maybe_help(mut self, help: Option<String>) -> Problem {
        self.help = help;
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().enumerate().map(
            |(i, label)| {
                let span = (label.span.start, label.span.end - label.span.start);
                let text = (!label.text.is_empty()).then(|| label.text.clone());
                if i == 0 {
                    LabeledSpan::new_primary_with_span(text, span)
                } else {
                    LabeledSpan::new_with_span(text, span)
                }
            },
        )))
    }
}

/// Every problem found in one stack file, in file order. Renders with miette, each problem
/// as a related diagnostic with its own labels.
#[derive(Debug)]
pub struct Diagnostics {
    file: String,
    source: NamedSource<String>,
    problems: Vec<Problem>,
}

impl Diagnostics {
    /// `problems` must not be empty. Spans are clamped to the text, and each problem gets
    /// its line and column.
    pub(crate) fn new(file: &str, text: &str, mut problems: Vec<Problem>) -> Diagnostics {
        for problem in &mut problems {
            for label in &mut problem.labels {
                let end = floor_char_boundary(text, label.span.end.min(text.len()));
                let start = floor_char_boundary(text, label.span.start.min(end));
                label.span = start..end;
            }
            if let Some(first) = problem.labels.first() {
                let before = &text[..first.span.start];
                problem.line = before.matches('\n').count() + 1;
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                problem.column = before[line_start..].chars().count() + 1;
            }
        }
        problems.sort_by_key(|p| (p.labels.is_empty(), p.labels.first().map(|l| l.span.start)));
        Diagnostics {
            file: file.to_owned(),
            source: NamedSource::new(file, text.to_owned()).with_language("TOML"),
            problems,
        }
    }

    /// The file's name as given to [`crate::parse`] or [`crate::load`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// In file order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.len() {
            1 => write!(f, "{} has 1 problem", self.file),
            n => write!(f, "{} has {n} problems", self.file),
        }
    }
}

impl std::error::Error for Diagnostics {}

impl Diagnostic for Diagnostics {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("berth::invalid_stack"))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.problems.iter().map(|p| p as &dyn Diagnostic)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_point_at_the_first_label() {
        let text = "a = 1\nbé = 2\n";
        let problem = Problem::new("t", "m").label(9..10, "here");
        let diags = Diagnostics::new("f.toml", text, vec![problem]);
        assert_eq!(
            (diags.problems()[0].line, diags.problems()[0].column),
            (2, 3)
        );
    }

    #[test]
    fn out_of_range_spans_are_clamped() {
        let diags = Diagnostics::new("f", "é", vec![Problem::new("t", "m").label(1..99, "")]);
        assert_eq!(diags.problems()[0].labels[0].span, 0..2);
    }
}
