//! `[registries]`: settings every service's image repository shares.

use crate::reader::{Problems, Table};

pub(crate) struct RegistryDefaults {
    pub scan_on_push: bool,
    pub immutable_tags: bool,
    pub keep_last: u32,
}

pub(crate) fn registry_defaults(
    top: &mut Table<'_, '_>,
    problems: &mut Problems,
) -> RegistryDefaults {
    let mut defaults = RegistryDefaults {
        scan_on_push: true,
        immutable_tags: false,
        keep_last: 10,
    };
    let Some(mut t) = top.table(problems, "registries") else {
        return defaults;
    };
    if let Some(scan) = t.bool(problems, "scan_on_push") {
        defaults.scan_on_push = scan;
    }
    if let Some(m) = t.str(problems, "tag_mutability") {
        match m.value {
            "mutable" => defaults.immutable_tags = false,
            "immutable" => defaults.immutable_tags = true,
            other => problems.at(
                "berth::bad_value",
                m.span,
                format!("`tag_mutability` must be \"mutable\" or \"immutable\", not \"{other}\""),
                "unknown value",
            ),
        }
    }
    if let Some(keep) = t.u32(problems, "keep_last", 1, 1000) {
        defaults.keep_last = keep.value;
    }
    t.finish(problems);
    defaults
}
