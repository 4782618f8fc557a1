//! Filter patterns: the unstructured subset of CloudWatch Logs' filter-pattern syntax.
//!
//! - `ERROR timeout`: every term must occur in the message (case-sensitive);
//! - `"connection refused"`: a quoted phrase is one term, spaces included;
//! - `-healthcheck`: the term must not occur;
//! - `?ERROR ?WARN`: at least one of the `?` terms must occur.
//!
//! JSON (`{ $.level = ... }`) and space-delimited (`[ip, ...]`) patterns are not supported.

/// A parsed filter pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterPattern {
    required: Vec<String>,
    excluded: Vec<String>,
    any_of: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("unterminated quote in filter pattern {pattern:?}")]
    UnterminatedQuote { pattern: String },
    #[error(
        "filter pattern {pattern:?} uses JSON or space-delimited syntax; only terms, \"quoted phrases\", -exclusions and ?alternatives are supported"
    )]
    Unsupported { pattern: String },
}

impl FilterPattern {
    pub fn parse(pattern: &str) -> Result<Self, FilterError> {
        let trimmed = pattern.trim();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            return Err(FilterError::Unsupported {
                pattern: pattern.to_owned(),
            });
        }
        let mut filter = Self::default();
        let mut chars = trimmed.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            let sigil = match first {
                '-' | '?' => {
                    chars.next();
                    Some(first)
                }
                _ => None,
            };
            let mut term = String::new();
            if chars.next_if_eq(&'"').is_some() {
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    term.push(c);
                }
                if !closed {
                    return Err(FilterError::UnterminatedQuote {
                        pattern: pattern.to_owned(),
                    });
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    term.push(c);
                }
            }
            if term.is_empty() {
                continue;
            }
            match sigil {
                Some('-') => filter.excluded.push(term),
                Some('?') => filter.any_of.push(term),
                _ => filter.required.push(term),
            }
        }
        Ok(filter)
    }

    /// Whether `message` passes the filter. The empty pattern matches everything.
    pub fn matches(&self, message: &str) -> bool {
        self.required.iter().all(|t| message.contains(t.as_str()))
            && !self.excluded.iter().any(|t| message.contains(t.as_str()))
            && (self.any_of.is_empty() || self.any_of.iter().any(|t| message.contains(t.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, message: &str) -> bool {
        FilterPattern::parse(pattern).unwrap().matches(message)
    }

    #[test]
    fn terms_phrases_exclusions_alternatives() {
        assert!(m("", "anything"));
        assert!(m("ERROR db", "ERROR: db down"));
        assert!(!m("ERROR db", "ERROR: disk full"));
        assert!(!m("error", "ERROR"), "case-sensitive");
        assert!(m("\"db down\"", "ERROR: db down"));
        assert!(!m("\"db down\"", "down db"));
        assert!(m("GET -health", "GET /api/files"));
        assert!(!m("GET -health", "GET /health"));
        assert!(m("?ERROR ?WARN", "WARN slow"));
        assert!(!m("?ERROR ?WARN", "INFO ok"));
        assert!(m("-\"GET /health\"", "GET /api"));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            FilterPattern::parse("\"open"),
            Err(FilterError::UnterminatedQuote { .. })
        ));
        assert!(matches!(
            FilterPattern::parse("{ $.level = \"x\" }"),
            Err(FilterError::Unsupported { .. })
        ));
    }
}
