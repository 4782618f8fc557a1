//! SSM parameter names (ECS-SEMANTICS §7.2): the rules are `berth_spec::rules`' (one source
//! for the stack file, this store and the AWS engine); the store adds what SSM's API does
//! to a name it is given, trimming surrounding spaces.

pub use berth_spec::rules::{
    MAX_PARAMETER_DEPTH as MAX_DEPTH, MAX_PARAMETER_NAME as MAX_NAME_LEN,
    ParameterNameError as NameError,
};

/// Validates a parameter name and returns its canonical form: surrounding spaces removed (SSM
/// trims them), and a leading `/` dropped from a name with a single level, because SSM treats
/// `/TestParam1` and `TestParam1` as the same parameter.
pub fn canonical_name(raw: &str) -> Result<String, NameError> {
    berth_spec::rules::parameter_name(raw.trim_matches(' '))
}

/// Validates a `--path` prefix of `param list` (GetParametersByPath): starts with `/`; its
/// levels follow the name rules. Returns it with a trailing `/`.
pub fn canonical_path(raw: &str) -> Result<String, NameError> {
    berth_spec::rules::parameter_path(raw.trim_matches(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_trims_what_ssm_trims() {
        assert_eq!(canonical_name("  DB_HOST ").unwrap(), "DB_HOST");
        assert!(matches!(canonical_name("   "), Err(NameError::Empty)));
        assert!(matches!(
            canonical_name("a b"),
            Err(NameError::Space { .. })
        ));
        assert_eq!(canonical_path(" /ecs ").unwrap(), "/ecs/");
    }

    #[test]
    fn the_store_and_the_stack_file_share_the_length_bound() {
        let longest = format!("/{}", "x".repeat(MAX_NAME_LEN - 1));
        assert!(canonical_name(&longest).is_ok());
        assert!(matches!(
            canonical_name(&format!("{longest}x")),
            Err(NameError::TooLong { .. })
        ));
    }
}
