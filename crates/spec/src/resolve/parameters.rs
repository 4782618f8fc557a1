//! `[parameters."<name>"]` (or `[[parameters]]` with `name`): the parameter store's contents.

use toml::de::DeValue;

use crate::diagnostics::Problem;
use crate::model::{
    Database, DatabaseKind, Generator, Parameter, ParameterType, ParameterValue, Reference,
    Segment, Template,
};
use crate::reader::{Problems, Sp, Span, Table, as_table, did_you_mean};
use crate::rules;

/// A parameter with the spans the cross-section checks point at.
pub(crate) struct ParameterSpans {
    pub parameter: Parameter,
    pub name_span: Span,
    pub references: Vec<Sp<Reference>>,
}

pub(crate) fn read(
    text: &str,
    top: &mut Table<'_, '_>,
    problems: &mut Problems,
    database: Option<&Database>,
) -> Vec<ParameterSpans> {
    let Some(node) = top.get("parameters") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    match node.get_ref() {
        DeValue::Table(_) => {
            let Some(table) = as_table(problems, node, "parameters".into()) else {
                return out;
            };
            for (name, node) in table.entries() {
                let Some(mut t) =
                    as_table(problems, node, format!("parameters.\"{}\"", name.value))
                else {
                    continue;
                };
                out.push(parameter(
                    text,
                    &mut t,
                    problems,
                    Sp::new(name.value.to_owned(), name.span),
                    database,
                ));
                t.finish(problems);
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let Some(mut t) = as_table(problems, item, format!("parameters[{i}]")) else {
                    continue;
                };
                let Some(name) = t.text(problems, "name") else {
                    if !t.mentions("name") {
                        problems.at(
                            "berth::missing_key",
                            item.span(),
                            "a `[[parameters]]` entry needs `name`",
                            "no `name`",
                        );
                    }
                    t.finish(problems);
                    continue;
                };
                out.push(parameter(text, &mut t, problems, name, database));
                t.finish(problems);
            }
        }
        other => problems.at(
            "berth::wrong_type",
            node.span(),
            format!(
                "`parameters` must be a table or an array of tables, not {}",
                crate::reader::type_name(other)
            ),
            "expected a table",
        ),
    }
    out
}

fn parameter(
    text: &str,
    t: &mut Table<'_, '_>,
    problems: &mut Problems,
    name: Sp<String>,
    database: Option<&Database>,
) -> ParameterSpans {
    if let Err(why) = rules::parameter_name(&name.value) {
        problems.push(
            Problem::new("berth::bad_parameter_name", why.to_string())
                .label(name.span.clone(), "invalid parameter name")
                .help("names look like /app/service/NAME: letters, digits, _ . - and /"),
        );
    }
    let kind = match t.str(problems, "type") {
        Some(k) => {
            match k.value {
                "String" => ParameterType::String,
                "SecureString" => ParameterType::SecureString,
                other => {
                    let suggestion = did_you_mean(other, ["String", "SecureString"]).or(
                        // Case slips are the common mistake (`securestring`).
                        ["String", "SecureString"]
                            .into_iter()
                            .find(|c| c.eq_ignore_ascii_case(other)),
                    );
                    problems.push(
                    Problem::new("berth::bad_value", format!("\"{other}\" is not a parameter type"))
                        .label(k.span, "unknown type")
                        .help(match suggestion {
                            Some(s) => format!("did you mean \"{s}\"?"),
                            None => "type is \"String\" or \"SecureString\" (StringList is not supported)".into(),
                        }),
                );
                    ParameterType::String
                }
            }
        }
        None => ParameterType::String,
    };
    let description = t.text(problems, "description").map(|d| d.value);
    if description.as_ref().is_some_and(|d| d.len() > 1024) {
        problems.at(
            "berth::bad_value",
            t.span.clone(),
            "a parameter description has at most 1024 characters",
            "too long",
        );
    }
    let value = t
        .str(problems, "value")
        .map(|v| Sp::new(v.value.to_owned(), v.span));
    let generate = t.str(problems, "generate").and_then(|g| match g.value {
        "password" => Some(Sp::new(Generator::Password, g.span)),
        other => {
            problems.at(
                "berth::bad_value",
                g.span,
                format!("berth cannot generate \"{other}\"; the only generator is \"password\""),
                "unknown generator",
            );
            None
        }
    });
    let managed = database.is_some_and(|d| matches!(d.kind, DatabaseKind::Managed(_)));
    let is_db_user = managed
        && database.and_then(|d| d.username_parameter.as_deref()) == Some(name.value.as_str());
    let is_db_password = managed
        && database.and_then(|d| d.password_parameter.as_deref()) == Some(name.value.as_str());
    let mut references = Vec::new();
    let value_source = match (kind, value, generate) {
        (ParameterType::SecureString, Some(value), _) => {
            problems.push(
                Problem::new("berth::secret_value_in_file", format!("SecureString `{}` has a value in the stack file", name.value))
                    .label(value.span, "a secret in plain text")
                    .help(format!(
                        "remove `value`: set it with `berth param put {}`, or `generate = \"password\"` to let berth create it",
                        name.value
                    )),
            );
            ParameterValue::Operator
        }
        (ParameterType::String, _, Some(generate)) => {
            problems.push(
                Problem::new("berth::bad_value", "only a SecureString can be generated")
                    .label(generate.span, "on a String")
                    .help("make it `type = \"SecureString\"`"),
            );
            ParameterValue::Operator
        }
        (ParameterType::String, Some(value), None) => {
            if value.value.is_empty() || value.value.len() > 4096 {
                problems.at(
                    "berth::bad_value",
                    value.span.clone(),
                    "a parameter value has 1 to 4096 characters",
                    "invalid length",
                );
            }
            let (template, refs) = parse_template(text, &value, problems);
            references = refs;
            ParameterValue::Template { template }
        }
        (ParameterType::SecureString, None, Some(generate)) => {
            if is_db_user {
                problems.at(
                    "berth::bad_value",
                    generate.span,
                    "the database user name parameter is filled by berth, not generated",
                    "remove this",
                );
            }
            ParameterValue::Generated {
                generator: generate.value,
            }
        }
        (_, None, None) if is_db_user => ParameterValue::DatabaseUsername,
        (_, None, None) if is_db_password => ParameterValue::DatabasePassword,
        (_, None, None) => ParameterValue::Operator,
    };
    let value_source = match value_source {
        ParameterValue::Generated { .. } if is_db_password => ParameterValue::DatabasePassword,
        other => other,
    };
    ParameterSpans {
        parameter: Parameter {
            name: name.value,
            kind,
            description,
            value: value_source,
        },
        name_span: name.span,
        references,
    }
}

/// Splits `text` at `${...}`; `$$` is a literal `$`. Reference spans are exact when the
/// value is written without escapes, else they cover the whole value.
fn parse_template(
    source: &str,
    value: &Sp<String>,
    problems: &mut Problems,
) -> (Template, Vec<Sp<Reference>>) {
    let raw = &value.value;
    let written = source.get(value.span.clone()).unwrap_or("");
    let exact =
        written.len() == raw.len() + 2 && written.get(1..written.len() - 1) == Some(raw.as_str());
    let span_of = |range: std::ops::Range<usize>| -> Span {
        if exact {
            value.span.start + 1 + range.start..value.span.start + 1 + range.end
        } else {
            value.span.clone()
        }
    };
    let mut segments = Vec::new();
    let mut references = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    let bytes = raw.as_bytes();
    while i < raw.len() {
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'$') {
            literal.push('$');
            i += 2;
        } else if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
            let Some(close) = raw[i..].find('}') else {
                problems.push(
                    Problem::new("berth::bad_reference", "a `${` without its closing `}`")
                        .label(span_of(i..raw.len()), "unclosed reference")
                        .help("write `$$` for a literal `$`"),
                );
                break;
            };
            let inner = &raw[i + 2..i + close];
            let span = span_of(i..i + close + 1);
            match Reference::parse(inner.trim()) {
                Some(reference) => {
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Reference(reference.clone()));
                    references.push(Sp::new(reference, span));
                }
                None => {
                    let suggestion = did_you_mean(inner.trim(), Reference::OUTPUTS);
                    problems.push(
                        Problem::new(
                            "berth::unknown_reference",
                            format!("`${{{inner}}}` is not a stack output"),
                        )
                        .label(span, "unknown reference")
                        .help(match suggestion {
                            Some(s) => format!("did you mean `${{{s}}}`?"),
                            None => format!(
                                "references are {}, or ${{param:/other/NAME}}",
                                Reference::OUTPUTS.map(|o| format!("${{{o}}}")).join(", ")
                            ),
                        }),
                    );
                }
            }
            i += close + 1;
        } else {
            let ch = raw[i..].chars().next().unwrap_or('$');
            literal.push(ch);
            i += ch.len_utf8();
        }
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    (Template { segments }, references)
}
