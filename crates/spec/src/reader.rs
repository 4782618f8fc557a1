//! Walks the spanned TOML document, reads typed values and collects every problem.
//!
//! Each table records the keys the schema asks for; whatever else it holds is an unknown
//! key, reported with the closest known key as a suggestion.

use std::fmt::Display;
use std::ops::Range;
use std::time::Duration;

use toml::de::{DeArray, DeTable, DeValue};

use crate::diagnostics::Problem;
use crate::duration;

pub(crate) type Span = Range<usize>;
pub(crate) type Node<'i> = toml::Spanned<DeValue<'i>>;

/// A value with the span of its text in the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Span) -> Sp<T> {
        Sp { value, span }
    }
}

/// The problems found so far.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        self.list.push(problem);
    }

    /// The common case: one label under the offending text.
    pub fn at(
        &mut self,
        code: &'static str,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) {
        self.push(Problem::new(code, message).label(span, label));
    }
}

pub(crate) fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Closest candidate to `word`, if one is close enough to be a likely typo.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::normalized_damerau_levenshtein(word, c), c))
        .filter(|(score, _)| *score >= 0.65)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A table being read.
pub(crate) struct Table<'a, 'i> {
    table: &'a DeTable<'i>,
    /// The span of the whole table (or of its header).
    pub span: Span,
    /// Dotted path for messages (`services.backend`).
    pub path: String,
    asked: Vec<&'static str>,
}

impl<'a, 'i> Table<'a, 'i> {
    pub fn new(table: &'a DeTable<'i>, span: Span, path: impl Into<String>) -> Table<'a, 'i> {
        Table {
            table,
            span,
            path: path.into(),
            asked: Vec::new(),
        }
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The raw node under `key`, recording that the schema knows `key`.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Node<'i>> {
        self.asked.push(key);
        self.table.get(key)
    }

    /// The span of `key` itself (for "remove this key" labels).
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.table.get_key_value(key).map(|(k, _)| k.span())
    }

    /// Whether the table holds `key`, or a key so close to it that the typo is reported
    /// as an unknown key (then "missing `key`" would only repeat it).
    pub fn mentions(&self, key: &str) -> bool {
        self.table
            .iter()
            .any(|(k, _)| k.get_ref() == key || did_you_mean(k.get_ref(), [key]).is_some())
    }

    /// Reports that the required `key` is missing, unless the table holds a near-miss of
    /// it (already reported as an unknown key).
    pub fn missing(&self, problems: &mut Problems, key: &str) {
        if !self.mentions(key) {
            problems.at(
                "berth::missing_key",
                self.span.clone(),
                format!("`{}` needs `{key}`", self.path),
                format!("no `{key}`"),
            );
        }
    }

    /// All entries (for tables keyed by user names, like `[services]`: such a table has
    /// no unknown keys, so it is not [`Table::finish`]ed).
    pub fn entries(&self) -> impl Iterator<Item = (Sp<&'a str>, &'a Node<'i>)> {
        self.table
            .iter()
            .map(|(k, v)| (Sp::new(k.get_ref().as_ref(), k.span()), v))
    }

    fn wrong_type(&self, problems: &mut Problems, key: &str, node: &Node<'i>, expected: &str) {
        problems.at(
            "berth::wrong_type",
            node.span(),
            format!(
                "`{}` must be {expected}, not {}",
                self.key_path(key),
                type_name(node.get_ref())
            ),
            format!("expected {expected}"),
        );
    }

    fn out_of_range(
        &self,
        problems: &mut Problems,
        key: &str,
        node: &Node<'i>,
        min: impl Display,
        max: impl Display,
    ) {
        problems.at(
            "berth::out_of_range",
            node.span(),
            format!("`{}` must be between {min} and {max}", self.key_path(key)),
            "out of range",
        );
    }

    pub fn str(&mut self, problems: &mut Problems, key: &'static str) -> Option<Sp<&'a str>> {
        let node = self.get(key)?;
        match node.get_ref() {
            DeValue::String(s) => Some(Sp::new(s.as_ref(), node.span())),
            _ => {
                self.wrong_type(problems, key, node, "a string");
                None
            }
        }
    }

    /// A string that must not be empty.
    pub fn text(&mut self, problems: &mut Problems, key: &'static str) -> Option<Sp<String>> {
        let s = self.str(problems, key)?;
        if s.value.trim().is_empty() {
            problems.at(
                "berth::empty",
                s.span,
                format!("`{}` cannot be empty", self.key_path(key)),
                "empty",
            );
            return None;
        }
        Some(Sp::new(s.value.to_owned(), s.span))
    }

    pub fn bool(&mut self, problems: &mut Problems, key: &'static str) -> Option<bool> {
        let node = self.get(key)?;
        match node.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(problems, key, node, "true or false");
                None
            }
        }
    }

    /// An integer within `range` (inclusive).
    pub fn int(
        &mut self,
        problems: &mut Problems,
        key: &'static str,
        min: i64,
        max: i64,
    ) -> Option<Sp<i64>> {
        let node = self.get(key)?;
        let DeValue::Integer(int) = node.get_ref() else {
            self.wrong_type(problems, key, node, "an integer");
            return None;
        };
        let value = i64::from_str_radix(int.as_str(), int.radix()).ok();
        match value {
            Some(v) if (min..=max).contains(&v) => Some(Sp::new(v, node.span())),
            _ => {
                self.out_of_range(problems, key, node, min, max);
                None
            }
        }
    }

    /// An integer within `min..=max`, as the narrower type the model keeps.
    fn narrow_int<T>(
        &mut self,
        problems: &mut Problems,
        key: &'static str,
        min: T,
        max: T,
    ) -> Option<Sp<T>>
    where
        T: Copy + Into<i64> + TryFrom<i64>,
    {
        self.int(problems, key, min.into(), max.into())
            // In range, so the conversion cannot fail; `max` only satisfies the types.
            .map(|v| Sp::new(T::try_from(v.value).unwrap_or(max), v.span))
    }

    pub fn u32(
        &mut self,
        problems: &mut Problems,
        key: &'static str,
        min: u32,
        max: u32,
    ) -> Option<Sp<u32>> {
        self.narrow_int(problems, key, min, max)
    }

    pub fn u16(
        &mut self,
        problems: &mut Problems,
        key: &'static str,
        min: u16,
        max: u16,
    ) -> Option<Sp<u16>> {
        self.narrow_int(problems, key, min, max)
    }

    /// A number (integer or float) within `min..=max`.
    pub fn number(
        &mut self,
        problems: &mut Problems,
        key: &'static str,
        min: f64,
        max: f64,
    ) -> Option<Sp<f64>> {
        let node = self.get(key)?;
        let value = match node.get_ref() {
            DeValue::Integer(int) => i64::from_str_radix(int.as_str(), int.radix())
                .ok()
                .map(|v| v as f64),
            DeValue::Float(float) => float.as_str().replace('_', "").parse::<f64>().ok(),
            _ => {
                self.wrong_type(problems, key, node, "a number");
                return None;
            }
        };
        match value {
            Some(v) if v.is_finite() && v >= min && v <= max => Some(Sp::new(v, node.span())),
            _ => {
                self.out_of_range(problems, key, node, min, max);
                None
            }
        }
    }

    /// A duration string within `min..=max`.
    pub fn duration(
        &mut self,
        problems: &mut Problems,
        key: &'static str,
        min: Duration,
        max: Duration,
    ) -> Option<Sp<Duration>> {
        let node = self.get(key)?;
        let text = match node.get_ref() {
            DeValue::String(s) => s.as_ref(),
            DeValue::Integer(int) => {
                problems.push(
                    Problem::new(
                        "berth::wrong_type",
                        format!(
                            "`{}` must be a duration string, not an integer",
                            self.key_path(key)
                        ),
                    )
                    .label(node.span(), "a bare number has no unit")
                    .help(format!(
                        "write the unit, for example `{key} = \"{}s\"`",
                        int.as_str()
                    )),
                );
                return None;
            }
            _ => {
                self.wrong_type(problems, key, node, "a duration string like \"30s\"");
                return None;
            }
        };
        match duration::parse(text) {
            Ok(d) if d >= min && d <= max => Some(Sp::new(d, node.span())),
            Ok(_) => {
                self.out_of_range(
                    problems,
                    key,
                    node,
                    duration::format(min),
                    duration::format(max),
                );
                None
            }
            Err(message) => {
                problems.push(
                    Problem::new(
                        "berth::bad_duration",
                        format!("`{}`: {message}", self.key_path(key)),
                    )
                    .label(node.span(), "not a duration")
                    .help("durations are written like \"250ms\", \"30s\", \"5m\", \"1h30m\""),
                );
                None
            }
        }
    }

    pub fn table(&mut self, problems: &mut Problems, key: &'static str) -> Option<Table<'a, 'i>> {
        let node = self.get(key)?;
        as_table(problems, node, self.key_path(key))
    }

    pub fn array(
        &mut self,
        problems: &mut Problems,
        key: &'static str,
    ) -> Option<Sp<&'a DeArray<'i>>> {
        let node = self.get(key)?;
        match node.get_ref() {
            DeValue::Array(a) => Some(Sp::new(a, node.span())),
            _ => {
                self.wrong_type(problems, key, node, "an array");
                None
            }
        }
    }

    /// An array of strings; wrong items are reported and skipped.
    pub fn strings(
        &mut self,
        problems: &mut Problems,
        key: &'static str,
    ) -> Option<Sp<Vec<Sp<String>>>> {
        let array = self.array(problems, key)?;
        let path = self.key_path(key);
        let items = array
            .value
            .iter()
            .filter_map(|item| match item.get_ref() {
                DeValue::String(s) => Some(Sp::new(s.to_string(), item.span())),
                other => {
                    problems.at(
                        "berth::wrong_type",
                        item.span(),
                        format!("`{path}` must hold strings, not {}", type_name(other)),
                        "expected a string",
                    );
                    None
                }
            })
            .collect();
        Some(Sp::new(items, array.span))
    }

    /// Reports every key the schema did not ask for.
    pub fn finish(self, problems: &mut Problems) {
        for (key, _) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if self.asked.contains(&name) {
                continue;
            }
            let suggestion = did_you_mean(name, self.asked.iter().copied());
            let where_ = if self.path.is_empty() {
                "at the top level".to_owned()
            } else {
                format!("in `{}`", self.path)
            };
            let mut known: Vec<&str> = self.asked.clone();
            known.dedup();
            let help = match suggestion {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("known keys here: {}", known.join(", ")),
            };
            problems.push(
                Problem::new(
                    "berth::unknown_key",
                    format!("unknown key `{name}` {where_}"),
                )
                .label(key.span(), "unknown key")
                .help(help),
            );
        }
    }
}

/// The node as a table, or a type problem.
pub(crate) fn as_table<'a, 'i>(
    problems: &mut Problems,
    node: &'a Node<'i>,
    path: String,
) -> Option<Table<'a, 'i>> {
    match node.get_ref() {
        DeValue::Table(t) => Some(Table::new(t, node.span(), path)),
        other => {
            problems.at(
                "berth::wrong_type",
                node.span(),
                format!("`{path}` must be a table, not {}", type_name(other)),
                "expected a table",
            );
            None
        }
    }
}
