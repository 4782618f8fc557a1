//! SSM parameter names (ECS-SEMANTICS §7.2).

/// Longest name: 1011 characters including the ARN prefix, whose example
/// (`arn:aws:ssm:us-east-2:111122223333:parameter/`) is 45 characters.
pub const MAX_NAME_LEN: usize = 1011 - 45;
/// Deepest hierarchy.
pub const MAX_DEPTH: usize = 15;

/// Why a parameter name is not valid, in SSM's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("parameter name is empty")]
    Empty,
    #[error("parameter name {name:?} contains a space")]
    Space { name: String },
    #[error(
        "parameter name {name:?} contains {character:?}: only letters, digits, _ . - and / are allowed"
    )]
    Character { name: String, character: char },
    #[error(
        "parameter name {name:?} starts with \"aws\" or \"ssm\", which are reserved (case-insensitive)"
    )]
    Reserved { name: String },
    #[error("hierarchical parameter name {name:?} must start with /")]
    NoLeadingSlash { name: String },
    #[error("parameter name {name:?} has an empty level (// or a trailing /)")]
    EmptyLevel { name: String },
    #[error("parameter name {name:?} has {depth} levels; at most {MAX_DEPTH} are allowed")]
    TooDeep { name: String, depth: usize },
    #[error(
        "parameter name is {len} characters; at most {MAX_NAME_LEN} are allowed (1011 with the ARN)"
    )]
    TooLong { len: usize },
}

/// Validates a parameter name and returns its canonical form: surrounding spaces removed (SSM
/// trims them), and a leading `/` dropped from a name with a single level, because SSM treats
/// `/TestParam1` and `TestParam1` as the same parameter.
pub fn canonical_name(raw: &str) -> Result<String, NameError> {
    let name = raw.trim_matches(' ');
    if name.is_empty() || name == "/" {
        return Err(NameError::Empty);
    }
    if name.contains(' ') {
        return Err(NameError::Space {
            name: name.to_owned(),
        });
    }
    if let Some(character) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        return Err(NameError::Character {
            name: name.to_owned(),
            character,
        });
    }
    let body = name.strip_prefix('/').unwrap_or(name);
    let lower = body.to_ascii_lowercase();
    if lower.starts_with("aws") || lower.starts_with("ssm") {
        return Err(NameError::Reserved {
            name: name.to_owned(),
        });
    }
    let hierarchical = body.contains('/');
    if hierarchical && !name.starts_with('/') {
        return Err(NameError::NoLeadingSlash {
            name: name.to_owned(),
        });
    }
    if body.split('/').any(str::is_empty) {
        return Err(NameError::EmptyLevel {
            name: name.to_owned(),
        });
    }
    let depth = body.split('/').count();
    if depth > MAX_DEPTH {
        return Err(NameError::TooDeep {
            name: name.to_owned(),
            depth,
        });
    }
    if body.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: body.len() });
    }
    Ok(if hierarchical {
        name.to_owned()
    } else {
        body.to_owned()
    })
}

/// Validates a `--path` prefix of `param list` (GetParametersByPath): starts with `/`; its
/// levels follow the name rules. Returns it with a trailing `/`.
pub fn canonical_path(raw: &str) -> Result<String, NameError> {
    let path = raw.trim_matches(' ');
    if path == "/" {
        return Ok("/".to_owned());
    }
    if !path.starts_with('/') {
        return Err(NameError::NoLeadingSlash {
            name: path.to_owned(),
        });
    }
    let trimmed = path.trim_end_matches('/');
    // Check the levels with the name rules (a one-level path is still a path).
    canonical_name(&format!("{trimmed}/x"))?;
    Ok(format!("{trimmed}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_and_canonical_forms() {
        assert_eq!(
            canonical_name("/ecs/backend/DB_HOST").unwrap(),
            "/ecs/backend/DB_HOST"
        );
        assert_eq!(canonical_name("  DB_HOST ").unwrap(), "DB_HOST");
        assert_eq!(canonical_name("/TestParam1").unwrap(), "TestParam1");
        assert_eq!(canonical_name("a.b-c_d").unwrap(), "a.b-c_d");
        let fifteen = format!("/{}", vec!["l"; 15].join("/"));
        assert!(canonical_name(&fifteen).is_ok());
        assert!(canonical_name(&"x".repeat(MAX_NAME_LEN)).is_ok());
    }

    #[test]
    fn invalid_names_say_why() {
        type Check = fn(&NameError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, NameError::Empty)),
            ("   ", |e| matches!(e, NameError::Empty)),
            ("a b", |e| matches!(e, NameError::Space { .. })),
            ("a$b", |e| {
                matches!(e, NameError::Character { character: '$', .. })
            }),
            ("/ecs/é", |e| matches!(e, NameError::Character { .. })),
            ("awsKey", |e| matches!(e, NameError::Reserved { .. })),
            ("/AWS/x", |e| matches!(e, NameError::Reserved { .. })),
            ("SSM", |e| matches!(e, NameError::Reserved { .. })),
            ("a/b", |e| matches!(e, NameError::NoLeadingSlash { .. })),
            ("/a//b", |e| matches!(e, NameError::EmptyLevel { .. })),
            ("/a/b/", |e| matches!(e, NameError::EmptyLevel { .. })),
            ("/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l", |e| {
                matches!(e, NameError::TooDeep { depth: 16, .. })
            }),
        ];
        for (name, expected) in cases {
            let err = canonical_name(name).unwrap_err();
            assert!(expected(&err), "{name:?}: {err:?}");
        }
        assert!(matches!(
            canonical_name(&"x".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong { .. })
        ));
    }

    #[test]
    fn paths() {
        assert_eq!(canonical_path("/ecs").unwrap(), "/ecs/");
        assert_eq!(canonical_path("/ecs/backend/").unwrap(), "/ecs/backend/");
        assert_eq!(canonical_path("/").unwrap(), "/");
        assert!(canonical_path("ecs").is_err());
    }
}
