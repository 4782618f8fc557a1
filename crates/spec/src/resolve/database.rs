//! `[database]`: a managed PostgreSQL (RDS) or an external one.

use crate::diagnostics::Problem;
use crate::model::{Database, DatabaseKind, ManagedDatabase};
use crate::reader::{Problems, Sp, Table};
use crate::rules;

/// The database section and the spans of the parameters it names.
pub(crate) fn database(
    top: &mut Table<'_, '_>,
    problems: &mut Problems,
    stack: &str,
) -> (Option<Database>, Vec<Sp<String>>) {
    let Some(mut t) = top.table(problems, "database") else {
        return (None, Vec::new());
    };
    let name = match t.text(problems, "name") {
        Some(n) => {
            if !rules::pg_identifier_ok(&n.value) {
                problems.at(
                    "berth::bad_name",
                    n.span.clone(),
                    "a database name is a letter followed by letters, digits or `_` (at most 63)",
                    "invalid database name",
                );
            }
            n.value
        }
        None => {
            if !t.mentions("name") {
                problems.at(
                    "berth::missing_key",
                    t.span.clone(),
                    "`database.name` is required",
                    "no `name`",
                );
            }
            String::new()
        }
    };
    let port = t
        .u16(problems, "port", 1150, 65535)
        .map_or(5432, |p| p.value);
    let username_parameter = t.text(problems, "username_parameter");
    let password_parameter = t.text(problems, "password_parameter");
    let spans: Vec<Sp<String>> = [&username_parameter, &password_parameter]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let url = t.text(problems, "url");
    let managed_keys: [&'static str; 12] = [
        "identifier",
        "engine",
        "version",
        "username",
        "instance_class",
        "allocated_storage",
        "storage_type",
        "backup_retention_days",
        "multi_az",
        "storage_encrypted",
        "deletion_protection",
        "subnet_group",
    ];
    let kind = if let Some(url) = url {
        if !(url.value.starts_with("postgres://") || url.value.starts_with("postgresql://")) {
            problems.at(
                "berth::bad_value",
                url.span.clone(),
                "`database.url` is a postgres:// URL",
                "not a PostgreSQL URL",
            );
        }
        if url.value.contains('@')
            && url
                .value
                .split('@')
                .next()
                .is_some_and(|userinfo| userinfo.matches(':').count() >= 2)
        {
            problems.push(
                Problem::new("berth::secret_in_file", "`database.url` carries a password")
                    .label(url.span.clone(), "password in the stack file")
                    .help("keep the password in the parameter store (`password_parameter`) and leave it out of the URL"),
            );
        }
        for key in managed_keys {
            if t.get(key).is_some() {
                problems.push(
                    Problem::new(
                        "berth::misplaced_key",
                        format!("`database.{key}` does not apply to an external database"),
                    )
                    .label(t.key_span(key).unwrap_or_default(), "ignored with `url`")
                    .help("remove it, or remove `url` to let berth run the database"),
                );
            }
        }
        DatabaseKind::External { url: url.value }
    } else {
        // Read for its check only: whatever is written, the engine is PostgreSQL.
        if let Some(e) = t.str(problems, "engine")
            && e.value != "postgres"
        {
            problems.at(
                "berth::bad_value",
                e.span,
                "the only engine is \"postgres\"",
                "unsupported engine",
            );
        }
        let version = t.text(problems, "version").map_or("15".to_owned(), |v| {
            if !v
                .value
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            {
                problems.at(
                    "berth::bad_value",
                    v.span.clone(),
                    "a PostgreSQL version is like \"15\" or \"15.4\"",
                    "invalid version",
                );
            }
            v.value
        });
        let username = t
            .text(problems, "username")
            .map_or("postgres".to_owned(), |u| {
                if !rules::pg_identifier_ok(&u.value) {
                    problems.at(
                        "berth::bad_name",
                        u.span.clone(),
                        "a user name is a letter followed by letters, digits or `_`",
                        "invalid user name",
                    );
                }
                u.value
            });
        let storage_type = t
            .str(problems, "storage_type")
            .map_or("gp3".to_owned(), |s| {
                if !["gp2", "gp3", "io1", "io2", "standard"].contains(&s.value) {
                    problems.at(
                        "berth::bad_value",
                        s.span.clone(),
                        "`storage_type` is gp2, gp3, io1, io2 or standard",
                        "unknown storage type",
                    );
                }
                s.value.to_owned()
            });
        let instance_class =
            t.text(problems, "instance_class")
                .map_or("db.t3.medium".to_owned(), |c| {
                    if !c.value.starts_with("db.") {
                        problems.at(
                            "berth::bad_value",
                            c.span.clone(),
                            "an instance class starts with `db.` (db.t3.medium)",
                            "not an instance class",
                        );
                    }
                    c.value
                });
        DatabaseKind::Managed(ManagedDatabase {
            identifier: t
                .text(problems, "identifier")
                .map_or(format!("{stack}-db"), |i| i.value),
            engine: "postgres".to_owned(),
            version,
            username,
            instance_class,
            allocated_storage: t
                .u32(problems, "allocated_storage", 20, 65_536)
                .map_or(20, |a| a.value),
            storage_type,
            backup_retention_days: t
                .u32(problems, "backup_retention_days", 0, 35)
                .map_or(7, |b| b.value),
            multi_az: t.bool(problems, "multi_az").unwrap_or(false),
            storage_encrypted: t.bool(problems, "storage_encrypted").unwrap_or(true),
            deletion_protection: t.bool(problems, "deletion_protection").unwrap_or(false),
            subnet_group: t
                .text(problems, "subnet_group")
                .map_or(format!("{stack}-db-subnet-group"), |s| s.value),
        })
    };
    t.finish(problems);
    let database = Database {
        name,
        port,
        username_parameter: username_parameter.map(|p| p.value),
        password_parameter: password_parameter.map(|p| p.value),
        kind,
    };
    (Some(database), spans)
}
