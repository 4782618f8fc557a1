//! `[iam]`: the execution role and one task role per service.

use crate::diagnostics::Problem;
use crate::model::{ExecutionRole, Iam, PolicyStatement, TaskRole};
use crate::reader::{Problems, Sp, Table, as_table, did_you_mean};

use super::parameters::ParameterSpans;
use super::services::ServiceSpans;

pub(crate) fn iam(
    top: &mut Table<'_, '_>,
    problems: &mut Problems,
    stack: &str,
    services: &[ServiceSpans],
    parameters: &[ParameterSpans],
) -> Iam {
    let mut execution_role = format!("{stack}-execution-role");
    let mut task_roles: Vec<TaskRole> = services
        .iter()
        .map(|s| TaskRole {
            service: s.service.name.clone(),
            name: format!("{stack}-{}-task-role", s.service.name),
            statements: Vec::new(),
        })
        .collect();
    if let Some(mut t) = top.table(problems, "iam") {
        if let Some(name) = t.text(problems, "execution_role") {
            role_name(problems, &name);
            execution_role = name.value;
        }
        if let Some(roles) = t.table(problems, "task_roles") {
            for (service, node) in roles.entries() {
                let Some(mut r) =
                    as_table(problems, node, format!("iam.task_roles.{}", service.value))
                else {
                    continue;
                };
                let Some(role) = task_roles.iter_mut().find(|r| r.service == service.value) else {
                    let names: Vec<&str> =
                        services.iter().map(|s| s.service.name.as_str()).collect();
                    problems.push(
                        Problem::new(
                            "berth::unknown_service",
                            format!(
                                "a task role for `{}`, which is not a service",
                                service.value
                            ),
                        )
                        .label(service.span.clone(), "no such service")
                        .maybe_help(
                            did_you_mean(service.value, names.iter().copied())
                                .map(|s| format!("did you mean `{s}`?")),
                        ),
                    );
                    continue;
                };
                if let Some(name) = r.text(problems, "name") {
                    role_name(problems, &name);
                    role.name = name.value;
                }
                if let Some(statements) = r.array(problems, "statements") {
                    for (i, item) in statements.value.iter().enumerate() {
                        let Some(mut s) =
                            as_table(problems, item, format!("{}.statements[{i}]", r.path))
                        else {
                            continue;
                        };
                        let actions = s
                            .strings(problems, "actions")
                            .map(|a| a.value.into_iter().map(|x| x.value).collect::<Vec<_>>());
                        let resources = s
                            .strings(problems, "resources")
                            .map(|a| a.value.into_iter().map(|x| x.value).collect::<Vec<_>>());
                        if actions.as_ref().is_none_or(Vec::is_empty)
                            || resources.as_ref().is_none_or(Vec::is_empty)
                        {
                            problems.at(
                                "berth::missing_key",
                                item.span(),
                                "a policy statement needs non-empty `actions` and `resources`",
                                "incomplete statement",
                            );
                        }
                        s.finish(problems);
                        role.statements.push(PolicyStatement {
                            actions: actions.unwrap_or_default(),
                            resources: resources.unwrap_or_default(),
                        });
                    }
                }
                r.finish(problems);
            }
        }
        t.finish(problems);
    }
    Iam {
        execution_role: ExecutionRole {
            name: execution_role,
            parameters: parameters
                .iter()
                .map(|p| p.parameter.name.clone())
                .collect(),
        },
        task_roles,
    }
}

pub(crate) fn role_name(problems: &mut Problems, name: &Sp<String>) {
    let ok = name.value.len() <= 64
        && name
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if !ok {
        problems.at(
            "berth::bad_name",
            name.span.clone(),
            "an IAM role name has at most 64 letters, digits and +=,.@_-",
            "invalid role name",
        );
    }
}
