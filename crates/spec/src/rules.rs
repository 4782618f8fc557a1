//! AWS's rules for names and values, as pure predicates (sources: ECS-SEMANTICS.md).

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

/// The longest parameter name berth accepts: SSM's 1011 characters include the ARN prefix
/// (`arn:aws:ssm:<region>:<account>:parameter`), which takes up to about 60.
pub(crate) const MAX_PARAMETER_NAME: usize = 950;

/// Why `name` is not a valid SSM parameter name (S7.2), if it is not.
pub(crate) fn parameter_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a parameter name cannot be empty".into());
    }
    if name.contains(' ') {
        return Some("a parameter name cannot contain spaces".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.-/".contains(*c)))
    {
        return Some(format!(
            "`{c}` is not allowed in a parameter name (only a-z A-Z 0-9 _ . - /)"
        ));
    }
    let bare = name.trim_start_matches('/').to_ascii_lowercase();
    if bare.starts_with("aws") || bare.starts_with("ssm") {
        return Some("a parameter name cannot start with `aws` or `ssm`".into());
    }
    if name.contains('/') && !name.starts_with('/') {
        return Some("a hierarchical parameter name must start with `/`".into());
    }
    if name.ends_with('/') || name.contains("//") {
        return Some("a parameter name cannot have an empty path segment".into());
    }
    if name.matches('/').count() > 15 {
        return Some("a parameter name has at most 15 levels".into());
    }
    if name.len() > MAX_PARAMETER_NAME {
        return Some(format!(
            "a parameter name has at most {MAX_PARAMETER_NAME} characters"
        ));
    }
    None
}

/// SSM treats `/Name` and `Name` as one parameter.
pub(crate) fn parameter_identity(name: &str) -> &str {
    if name.matches('/').count() == 1 {
        name.trim_start_matches('/')
    } else {
        name
    }
}

/// A log group name: 1–512 of `[.\-_/#A-Za-z0-9]` (S8.3).
pub(crate) fn log_group_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 512 {
        return Some("a log group name has 1 to 512 characters".into());
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
pub(crate) fn env_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An ALB path pattern: up to 128 characters of A–Z a–z 0–9 _ - . $ / ~ " ' @ : + & * ?.
pub(crate) fn path_pattern_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some("a path pattern starts with `/`".into());
    }
    if path.len() > 128 {
        return Some("a path pattern has at most 128 characters".into());
    }
    path.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_-.$/~\"'@:+&*?".contains(*c)))
        .map(|c| format!("`{c}` is not allowed in a path pattern"))
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
    fn parameter_names() {
        assert_eq!(parameter_name_problem("/ecs/backend/DB_HOST"), None);
        assert_eq!(parameter_name_problem("plain"), None);
        assert!(parameter_name_problem("/aws/x").is_some());
        assert!(parameter_name_problem("SSM_thing").is_some());
        assert!(parameter_name_problem("a/b").is_some());
        assert!(parameter_name_problem("/a b").is_some());
        assert!(parameter_name_problem("/a//b").is_some());
        assert!(parameter_name_problem(&"/a".repeat(16)).is_some());
        assert!(parameter_name_problem("/é").is_some());
        assert_eq!(parameter_identity("/x"), "x");
        assert_eq!(parameter_identity("/a/x"), "/a/x");
    }

    #[test]
    fn other_names() {
        assert!(log_group_problem("/ecs/backend").is_none());
        assert!(log_group_problem("/ecs/back end").is_some());
        assert!(dns_label_problem("ecs-alb", 32).is_none());
        assert!(dns_label_problem("-x", 32).is_some());
        assert!(env_name_ok("DB_HOST") && !env_name_ok("1X") && !env_name_ok("A-B"));
        assert!(path_pattern_problem("/api/*").is_none());
        assert!(path_pattern_problem("api").is_some());
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
