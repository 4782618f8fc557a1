//! AWS's rules for names and values, as pure predicates (sources: ECS-SEMANTICS.md): the
//! one place they are written. The stack file checks its values with them, and the local
//! runtime (parameter store, logs, balancer) checks what it is given with the same ones.

/// Fargate's task sizes: CPU units and the memory values (MiB) each allows.
pub(crate) fn fargate_memory_for(cpu: u32) -> Option<Vec<u32>> {
    let (from, to, step) = match cpu {
        256 => return Some(vec![512, 1024, 2048]),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122_880, 8192),
        _ => return None,
    };
    Some((from..=to).step_by(step).collect())
}

pub(crate) const FARGATE_CPUS: [u32; 7] = [256, 512, 1024, 2048, 4096, 8192, 16384];

/// CloudWatch Logs' allowed `retentionInDays` values (S8.4).
pub(crate) const LOG_RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The longest parameter name: SSM allows 1011 characters *including* the ARN prefix
/// (`arn:<partition>:ssm:<region>:<account>:parameter/`), which takes up to about 60 (the
/// longest partition and Region names), so a name of 950 fits in every Region. The stack
/// file, the local store and the AWS engine all use this one bound.
pub const MAX_PARAMETER_NAME: usize = 950;
/// Deepest parameter hierarchy (S7.2).
pub const MAX_PARAMETER_DEPTH: usize = 15;

/// Why a parameter name is not valid (S7.2), in SSM's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParameterNameError {
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
    #[error(
        "parameter name {name:?} has {depth} levels; at most {MAX_PARAMETER_DEPTH} are allowed"
    )]
    TooDeep { name: String, depth: usize },
    #[error("parameter name is {len} characters; at most {MAX_PARAMETER_NAME} are allowed")]
    TooLong { len: usize },
}

/// Checks a parameter name (S7.2) and returns its canonical form: a single-level name
/// without its leading `/`, because SSM treats `/TestParam1` and `TestParam1` as one
/// parameter. Spaces are refused; SSM's API trims surrounding ones, which is its caller's
/// business (the local store does it).
pub fn parameter_name(name: &str) -> Result<String, ParameterNameError> {
    if name.is_empty() || name == "/" {
        return Err(ParameterNameError::Empty);
    }
    let owned = || name.to_owned();
    if name.contains(' ') {
        return Err(ParameterNameError::Space { name: owned() });
    }
    if let Some(character) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        return Err(ParameterNameError::Character {
            name: owned(),
            character,
        });
    }
    let body = name.strip_prefix('/').unwrap_or(name);
    let lower = body.to_ascii_lowercase();
    if lower.starts_with("aws") || lower.starts_with("ssm") {
        return Err(ParameterNameError::Reserved { name: owned() });
    }
    let hierarchical = body.contains('/');
    if hierarchical && !name.starts_with('/') {
        return Err(ParameterNameError::NoLeadingSlash { name: owned() });
    }
    if body.split('/').any(str::is_empty) {
        return Err(ParameterNameError::EmptyLevel { name: owned() });
    }
    let depth = body.split('/').count();
    if depth > MAX_PARAMETER_DEPTH {
        return Err(ParameterNameError::TooDeep {
            name: owned(),
            depth,
        });
    }
    if name.len() > MAX_PARAMETER_NAME {
        return Err(ParameterNameError::TooLong { len: name.len() });
    }
    Ok(if hierarchical {
        owned()
    } else {
        body.to_owned()
    })
}

/// Checks a path prefix (GetParametersByPath): starts with `/`, its levels follow the name
/// rules. Returns it with a trailing `/`.
pub fn parameter_path(path: &str) -> Result<String, ParameterNameError> {
    if path == "/" {
        return Ok("/".to_owned());
    }
    if !path.starts_with('/') {
        return Err(ParameterNameError::NoLeadingSlash {
            name: path.to_owned(),
        });
    }
    let trimmed = path.trim_end_matches('/');
    // A one-level path is still a path: check its levels as a name's.
    parameter_name(&format!("{trimmed}/x"))?;
    Ok(format!("{trimmed}/"))
}

/// SSM treats `/Name` and `Name` as one parameter.
pub fn parameter_identity(name: &str) -> &str {
    if name.matches('/').count() == 1 {
        name.trim_start_matches('/')
    } else {
        name
    }
}

/// The longest log group name (S8.3).
pub const MAX_LOG_GROUP_NAME: usize = 512;

/// Why `name` is not a log group name: 1–512 of `[.\-_/#A-Za-z0-9]` (S8.3).
pub fn log_group_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_LOG_GROUP_NAME {
        return Some(format!(
            "a log group name has 1 to {MAX_LOG_GROUP_NAME} characters"
        ));
    }
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-/#".contains(*c)))
        .map(|c| format!("`{c}` is not allowed in a log group name (only a-z A-Z 0-9 . _ - / #)"))
}

/// A resource name made of letters, digits and hyphens (ALB, target group, stack, service).
pub(crate) fn dns_label_problem(name: &str, max: usize) -> Option<String> {
    if name.is_empty() || name.len() > max {
        return Some(format!("must have 1 to {max} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Some(format!(
            "`{c}` is not allowed (only letters, digits and `-`)"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("cannot start or end with `-`".into());
    }
    None
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn env_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The longest ALB path pattern (S5.26).
pub const MAX_PATH_PATTERN: usize = 128;

/// Why `pattern` is not an ALB path pattern (S5.26): 1–128 characters of
/// A–Z a–z 0–9 _ - . $ / ~ " ' @ : + & and the wildcards * ?.
pub fn path_pattern_problem(pattern: &str) -> Option<String> {
    if pattern.is_empty() {
        return Some("a path pattern cannot be empty".into());
    }
    if pattern.len() > MAX_PATH_PATTERN {
        return Some(format!(
            "a path pattern has at most {MAX_PATH_PATTERN} characters"
        ));
    }
    pattern
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_-.$/~\"'@:+&*?".contains(*c)))
        .map(|c| format!("`{c}` is not allowed in a path pattern (only A-Z a-z 0-9 _ - . $ / ~ \" ' @ : + & * ?)"))
}

/// Whether a valid pattern can never match: a request path starts with `/`, so a pattern
/// starting with anything but `/` or a wildcard is accepted by the ALB and matches nothing.
pub fn path_pattern_never_matches(pattern: &str) -> bool {
    !pattern.starts_with(['/', '*', '?'])
}

/// Why `arn` cannot be an ALB listener's certificate: an ACM certificate
/// (`arn:<partition>:acm:<region>:<account>:certificate/<id>`) or an IAM server certificate
/// (`arn:<partition>:iam::<account>:server-certificate/<path/name>`).
pub fn certificate_arn_problem(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let account_ok = |a: &str| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit());
    let ok = match parts.as_slice() {
        ["arn", partition, "acm", region, account, resource] => {
            partition.starts_with("aws")
                && !region.is_empty()
                && account_ok(account)
                && resource
                    .strip_prefix("certificate/")
                    .is_some_and(|id| !id.is_empty())
        }
        ["arn", partition, "iam", "", account, resource] => {
            partition.starts_with("aws")
                && account_ok(account)
                && resource
                    .strip_prefix("server-certificate/")
                    .is_some_and(|name| !name.is_empty())
        }
        _ => false,
    };
    (!ok).then(|| {
        "a certificate ARN is arn:aws:acm:<region>:<account>:certificate/<id> (ACM) or arn:aws:iam::<account>:server-certificate/<name> (IAM)".to_owned()
    })
}

/// A PostgreSQL identifier usable unquoted: a letter, then letters, digits, `_`; ≤ 63.
pub(crate) fn pg_identifier_ok(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_pairs() {
        assert!(fargate_memory_for(512).unwrap().contains(&1024));
        assert!(fargate_memory_for(1024).unwrap().contains(&2048));
        assert!(!fargate_memory_for(256).unwrap().contains(&4096));
        assert!(fargate_memory_for(8192).unwrap().contains(&20480));
        assert!(!fargate_memory_for(8192).unwrap().contains(&17408));
        assert_eq!(fargate_memory_for(300), None);
    }

    #[test]
    fn parameter_names_and_their_canonical_forms() {
        assert_eq!(
            parameter_name("/ecs/backend/DB_HOST").as_deref(),
            Ok("/ecs/backend/DB_HOST")
        );
        assert_eq!(parameter_name("plain").as_deref(), Ok("plain"));
        assert_eq!(parameter_name("/TestParam1").as_deref(), Ok("TestParam1"));
        assert_eq!(parameter_name("a.b-c_d").as_deref(), Ok("a.b-c_d"));
        assert_eq!(parameter_identity("/x"), "x");
        assert_eq!(parameter_identity("/a/x"), "/a/x");
    }

    #[test]
    fn parameter_name_edges() {
        use ParameterNameError as E;
        type Check = fn(&ParameterNameError) -> bool;
        let fifteen = format!("/{}", ["l"; 15].join("/"));
        let sixteen = format!("/{}", ["l"; 16].join("/"));
        assert!(parameter_name(&fifteen).is_ok());
        let longest = format!("/{}", "x".repeat(MAX_PARAMETER_NAME - 1));
        assert!(parameter_name(&longest).is_ok());
        let too_long = format!("{longest}x");
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, E::Empty)),
            ("/", |e| matches!(e, E::Empty)),
            (" a", |e| matches!(e, E::Space { .. })),
            ("/a b", |e| matches!(e, E::Space { .. })),
            ("a$b", |e| matches!(e, E::Character { character: '$', .. })),
            ("/ecs/é", |e| matches!(e, E::Character { .. })),
            ("awsKey", |e| matches!(e, E::Reserved { .. })),
            ("/AWS/x", |e| matches!(e, E::Reserved { .. })),
            ("SSM", |e| matches!(e, E::Reserved { .. })),
            ("a/b", |e| matches!(e, E::NoLeadingSlash { .. })),
            ("/a//b", |e| matches!(e, E::EmptyLevel { .. })),
            ("/a/b/", |e| matches!(e, E::EmptyLevel { .. })),
            (&sixteen, |e| matches!(e, E::TooDeep { depth: 16, .. })),
            (
                &too_long,
                |e| matches!(e, E::TooLong { len } if *len == MAX_PARAMETER_NAME + 1),
            ),
        ];
        for (name, expected) in cases {
            let err = parameter_name(name).unwrap_err();
            assert!(expected(&err), "{name:?}: {err:?}");
        }
    }

    #[test]
    fn parameter_paths() {
        assert_eq!(parameter_path("/ecs").as_deref(), Ok("/ecs/"));
        assert_eq!(
            parameter_path("/ecs/backend/").as_deref(),
            Ok("/ecs/backend/")
        );
        assert_eq!(parameter_path("/").as_deref(), Ok("/"));
        assert!(parameter_path("ecs").is_err());
        assert!(parameter_path("/aws").is_err());
    }

    #[test]
    fn log_group_name_edges() {
        assert!(log_group_problem("/ecs/backend#1").is_none());
        assert!(log_group_problem(&"a".repeat(MAX_LOG_GROUP_NAME)).is_none());
        assert!(log_group_problem(&"a".repeat(MAX_LOG_GROUP_NAME + 1)).is_some());
        assert!(log_group_problem("").is_some());
        assert!(log_group_problem("/ecs/back end").is_some());
        assert!(log_group_problem("/ecs/é").is_some());
        assert!(log_group_problem("a:b").is_some());
    }

    #[test]
    fn certificate_arn_edges() {
        for good in [
            "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012",
            "arn:aws-us-gov:acm:us-gov-west-1:123456789012:certificate/abc",
            "arn:aws:iam::123456789012:server-certificate/berth-test",
        ] {
            assert_eq!(certificate_arn_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "arn:",
            "certificate/abc",
            "arn:aws:acm:us-east-1:123456789012:certificate/",
            "arn:aws:acm:us-east-1:1234:certificate/abc",
            "arn:aws:acm::123456789012:certificate/abc",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:role/x",
        ] {
            assert!(certificate_arn_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn path_pattern_edges() {
        for good in ["/api/*", "*", "*.css", "/a-b_c.d$e~f'g@h:i+j&k?", "/\"q\""] {
            assert_eq!(path_pattern_problem(good), None, "{good:?}");
        }
        assert_eq!(
            path_pattern_problem(&format!("/{}", "a".repeat(MAX_PATH_PATTERN - 1))),
            None
        );
        let long = format!("/{}", "a".repeat(MAX_PATH_PATTERN));
        for bad in ["", "/a b", "/a%20b", "/a#b", "/é", long.as_str()] {
            assert!(path_pattern_problem(bad).is_some(), "{bad:?}");
        }
        assert!(path_pattern_never_matches("admin"));
        assert!(!path_pattern_never_matches("/admin") && !path_pattern_never_matches("*.css"));
    }

    #[test]
    fn other_names() {
        assert!(dns_label_problem("ecs-alb", 32).is_none());
        assert!(dns_label_problem("-x", 32).is_some());
        assert!(env_name_ok("DB_HOST") && !env_name_ok("1X") && !env_name_ok("A-B"));
        assert!(pg_identifier_ok("fileanalyzer") && !pg_identifier_ok("file-analyzer"));
    }
}

/// A Dockerfile stage name (`FROM ... AS name`): a letter, then letters, digits, `-_.`.
pub(crate) fn is_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// An image reference as docker and podman accept it: `[host[:port]/]path[:tag][@digest]`,
/// path components lowercase (`a-z0-9` separated by `.`, `_`, `__` or `-`), a tag of up to
/// 128 of `\w.-` not starting with `.` or `-`, a digest `algorithm:hex`.
pub(crate) fn image_reference_problem(reference: &str) -> Option<String> {
    if reference.len() > 255 {
        return Some("longer than 255 characters".into());
    }
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest {
        let ok = digest.split_once(':').is_some_and(|(algorithm, hex)| {
            !algorithm.is_empty()
                && algorithm
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && hex.len() >= 32
                && hex
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        });
        if !ok {
            return Some(format!(
                "`{digest}` is not a digest such as `sha256:<64 hex digits>`"
            ));
        }
    }
    // A tag follows the last `:` after the last `/` (an earlier `:` is a registry's port).
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match name[last_slash..].find(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return Some(format!(
                "tag `{tag}`: up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
            ));
        }
    }
    let mut components: Vec<&str> = path.split('/').collect();
    // The first component is a registry host when it has a `.` or a `:`, or is `localhost`.
    if components.len() > 1 && (components[0].contains(['.', ':']) || components[0] == "localhost")
    {
        let host = components.remove(0);
        let (domain, port) = host.split_once(':').unwrap_or((host, "0"));
        let ok = !domain.is_empty()
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
            && port.parse::<u16>().is_ok();
        if !ok {
            return Some(format!("`{host}` is not a registry host[:port]"));
        }
    }
    for component in components {
        let ok = !component.is_empty()
            && component
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && component.starts_with(|c: char| c.is_ascii_alphanumeric())
            && component.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !ok {
            return Some(format!(
                "name component `{component}`: lowercase letters and digits, separated by `.`, `_` or `-`"
            ));
        }
    }
    None
}

#[cfg(test)]
mod image_reference_tests {
    use super::image_reference_problem;

    #[test]
    fn image_references() {
        for ok in [
            "nginx",
            "nginx:1.27",
            "docker.io/library/debian:bookworm-slim",
            "localhost:5000/backend-repo:abc123",
            "localhost/berth/backend-repo:0123abcd",
            "ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(image_reference_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-x",
            "nginx@sha256:xyz",
            "a//b",
            "registry.example:port/app",
            "app name",
        ] {
            assert!(image_reference_problem(bad).is_some(), "{bad:?}");
        }
    }
}
