//! Checks that span sections: routes, the default service, secrets, references, cycles.

use std::collections::{BTreeMap, HashMap};

use crate::diagnostics::Problem;
use crate::model::{ParameterType, ParameterValue, Reference};
use crate::reader::{Problems, Sp, did_you_mean};
use crate::rules;

use super::{ParameterSpans, Read, ServiceSpans};

/// Marks the service the listener's default action forwards to.
pub(crate) fn default_service(
    services: &mut [ServiceSpans],
    named: Option<&Sp<String>>,
    problems: &mut Problems,
) {
    match named {
        Some(name) => match services.iter_mut().find(|s| s.service.name == name.value) {
            Some(service) => service.service.default_route = true,
            None => {
                let names: Vec<&str> = services.iter().map(|s| s.service.name.as_str()).collect();
                problems.push(
                    Problem::new(
                        "berth::unknown_service",
                        format!(
                            "the default route goes to `{}`, which is not a service",
                            name.value
                        ),
                    )
                    .label(name.span.clone(), "no such service")
                    .help(
                        match did_you_mean(&name.value, names.iter().copied()) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!("services: {}", names.join(", ")),
                        },
                    ),
                );
            }
        },
        None if services.len() == 1 => services[0].service.default_route = true,
        None => {
            if let Some(first) = services.first() {
                problems.push(
                    Problem::new(
                        "berth::no_default_route",
                        "no service receives the requests that no route matches",
                    )
                    .label(first.name_span.clone(), "one of the services")
                    .help(format!(
                        "add `default_service = \"{}\"` (or another service) to [load_balancer]",
                        first.service.name
                    )),
                );
            }
        }
    }
}

pub(crate) fn run(read: &Read, problems: &mut Problems) {
    routes(&read.services, problems);
    unique_names(&read.services, problems);
    secrets(&read.stack.name, &read.services, &read.parameters, problems);
    database_parameters(read, problems);
    parameters(&read.parameters, read.stack.database.is_some(), problems);
}

fn routes(services: &[ServiceSpans], problems: &mut Problems) {
    let mut by_priority: BTreeMap<u32, Vec<(&str, &Sp<u32>)>> = BTreeMap::new();
    for service in services {
        for (priority, _) in &service.routes {
            by_priority
                .entry(priority.value)
                .or_default()
                .push((&service.service.name, priority));
        }
    }
    for (priority, rules) in by_priority {
        if rules.len() < 2 {
            continue;
        }
        let mut problem = Problem::new(
            "berth::duplicate_priority",
            format!("{} routes share priority {priority}", rules.len()),
        );
        for (service, sp) in &rules {
            problem = problem.label(sp.span.clone(), format!("route of `{service}`"));
        }
        problems.push(problem.help(
            "every listener rule needs its own priority; the lower number is evaluated first",
        ));
    }
}

fn unique_names(services: &[ServiceSpans], problems: &mut Problems) {
    type Field = fn(&crate::model::Service) -> &str;
    let fields: [(&str, Field); 4] = [
        ("repository", |s| &s.repository),
        ("target group", |s| &s.target_group),
        ("ECS service name", |s| &s.service_name),
        ("task family", |s| &s.task_family),
    ];
    for (what, field) in fields {
        let mut seen: HashMap<&str, &ServiceSpans> = HashMap::new();
        for service in services {
            let value = field(&service.service);
            if let Some(first) = seen.insert(value, service) {
                problems.push(
                    Problem::new(
                        "berth::duplicate_name",
                        format!(
                            "services `{}` and `{}` share the {what} `{value}`",
                            first.service.name, service.service.name
                        ),
                    )
                    .label(service.name_span.clone(), "second")
                    .label(first.name_span.clone(), "first"),
                );
            }
        }
    }
}

fn secrets(
    stack: &str,
    services: &[ServiceSpans],
    parameters: &[ParameterSpans],
    problems: &mut Problems,
) {
    let names: Vec<&str> = parameters
        .iter()
        .map(|p| p.parameter.name.as_str())
        .collect();
    for service in services {
        for (var, parameter) in &service.secrets {
            if let Some(env) = service.environment.iter().find(|e| e.value == var.value) {
                problems.push(
                    Problem::new("berth::duplicate_variable", format!("`{}` is both an environment variable and a secret", var.value))
                        .label(var.span.clone(), "secret")
                        .label(env.span.clone(), "environment variable")
                        .help("keep one: secrets come from the parameter store, environment values from the file"),
                );
            }
            if names.iter().any(|n| {
                rules::parameter_identity(n) == rules::parameter_identity(&parameter.value)
            }) {
                continue;
            }
            let suggestion = did_you_mean(&parameter.value, names.iter().copied());
            if suggestion.is_none() && !parameter.value.starts_with('/') {
                // Not a hierarchical name and close to none: most likely the secret itself.
                let name = format!("/{stack}/{}/{}", service.service.name, var.value);
                problems.push(
                    Problem::new(
                        "berth::secret_value_in_file",
                        format!("secret `{}` of `{}` is given a value, not a parameter name", var.value, service.service.name),
                    )
                    .label(parameter.span.clone(), "a value in plain text?")
                    .help(format!(
                        "a secret names a parameter: write `{} = \"{name}\"`, declare [parameters.\"{name}\"] with `type = \"SecureString\"` and set it with `berth param put {name}`",
                        var.value
                    )),
                );
                continue;
            }
            let mut problem = Problem::new(
                "berth::unknown_parameter",
                format!(
                    "secret `{}` of `{}` names `{}`, which is not a parameter of this stack",
                    var.value, service.service.name, parameter.value
                ),
            )
            .label(parameter.span.clone(), "no such parameter");
            problem = match suggestion {
                Some(s) => problem.help(format!("did you mean `{s}`?")),
                None => problem.help(format!(
                    "declare it: [parameters.\"{}\"] with `type = \"SecureString\"`",
                    parameter.value
                )),
            };
            problems.push(problem);
        }
    }
}

fn database_parameters(read: &Read, problems: &mut Problems) {
    for name in &read.database_parameters {
        match read
            .parameters
            .iter()
            .find(|p| p.parameter.name == name.value)
        {
            None => problems.push(
                Problem::new(
                    "berth::unknown_parameter",
                    format!(
                        "the database names `{}`, which is not a parameter of this stack",
                        name.value
                    ),
                )
                .label(name.span.clone(), "no such parameter")
                .help(format!(
                    "declare it: [parameters.\"{}\"] with `type = \"SecureString\"`",
                    name.value
                )),
            ),
            Some(p) if p.parameter.kind != ParameterType::SecureString => problems.push(
                Problem::new(
                    "berth::not_secure",
                    format!(
                        "`{}` holds a database credential but is a String",
                        name.value
                    ),
                )
                .label(p.name_span.clone(), "make this a SecureString")
                .label(name.span.clone(), "used for a credential here")
                .help("credentials are encrypted at rest: `type = \"SecureString\"`"),
            ),
            Some(_) => {}
        }
    }
}

fn parameters(parameters: &[ParameterSpans], has_database: bool, problems: &mut Problems) {
    // Duplicates: SSM treats `/Name` and `Name` as one parameter.
    let mut seen: HashMap<&str, &ParameterSpans> = HashMap::new();
    for p in parameters {
        if let Some(first) = seen.insert(rules::parameter_identity(&p.parameter.name), p) {
            problems.push(
                Problem::new(
                    "berth::duplicate_name",
                    format!(
                        "`{}` and `{}` are the same parameter",
                        first.parameter.name, p.parameter.name
                    ),
                )
                .label(p.name_span.clone(), "second")
                .label(first.name_span.clone(), "first"),
            );
        }
    }
    let by_name: HashMap<&str, &ParameterSpans> = parameters
        .iter()
        .map(|p| (p.parameter.name.as_str(), p))
        .collect();
    for p in parameters {
        for reference in &p.references {
            match &reference.value {
                Reference::DatabaseHost | Reference::DatabasePort | Reference::DatabaseName if !has_database => {
                    problems.push(
                        Problem::new("berth::unknown_reference", format!("`${{{}}}` needs a [database] section", reference.value))
                            .label(reference.span.clone(), "this stack has no database"),
                    );
                }
                Reference::Parameter(name) => match by_name.get(name.as_str()) {
                    None => problems.push(
                        Problem::new("berth::unknown_reference", format!("`${{param:{name}}}` names no parameter of this stack"))
                            .label(reference.span.clone(), "no such parameter")
                            .maybe_help(did_you_mean(name, by_name.keys().copied()).map(|s| format!("did you mean `{s}`?"))),
                    ),
                    Some(target) if target.parameter.kind == ParameterType::SecureString => problems.push(
                        Problem::new("berth::secret_in_string", format!("String `{}` would copy SecureString `{name}` in clear", p.parameter.name))
                            .label(reference.span.clone(), "a SecureString")
                            .help("reference only String parameters; give the secret to the service through `secrets`"),
                    ),
                    Some(_) => {}
                },
                _ => {}
            }
        }
    }
    cycles(parameters, &by_name, problems);
}

/// Reports each reference cycle among parameters once.
fn cycles(
    parameters: &[ParameterSpans],
    by_name: &HashMap<&str, &ParameterSpans>,
    problems: &mut Problems,
) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit<'a>(
        p: &'a ParameterSpans,
        by_name: &HashMap<&str, &'a ParameterSpans>,
        marks: &mut HashMap<&'a str, Mark>,
        stack: &mut Vec<(&'a ParameterSpans, &'a Sp<Reference>)>,
        problems: &mut Problems,
    ) {
        marks.insert(&p.parameter.name, Mark::Active);
        for reference in &p.references {
            let Reference::Parameter(name) = &reference.value else {
                continue;
            };
            let Some(next) = by_name.get(name.as_str()).copied() else {
                continue;
            };
            if !matches!(next.parameter.value, ParameterValue::Template { .. }) {
                continue;
            }
            stack.push((p, reference));
            match marks
                .get(next.parameter.name.as_str())
                .copied()
                .unwrap_or(Mark::New)
            {
                Mark::New => visit(next, by_name, marks, stack, problems),
                Mark::Active => {
                    let start = stack
                        .iter()
                        .position(|(q, _)| q.parameter.name == next.parameter.name)
                        .unwrap_or(0);
                    let cycle = &stack[start..];
                    let names: Vec<&str> = cycle
                        .iter()
                        .map(|(q, _)| q.parameter.name.as_str())
                        .chain([next.parameter.name.as_str()])
                        .collect();
                    let mut problem = Problem::new(
                        "berth::reference_cycle",
                        format!(
                            "parameters reference each other in a cycle: {}",
                            names.join(" → ")
                        ),
                    );
                    for (_, r) in cycle {
                        problem = problem.label(r.span.clone(), "");
                    }
                    problems.push(
                        problem.help(
                            "a value cannot depend on itself; break the cycle with a literal",
                        ),
                    );
                }
                Mark::Done => {}
            }
            stack.pop();
        }
        marks.insert(&p.parameter.name, Mark::Done);
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    for p in parameters {
        if marks
            .get(p.parameter.name.as_str())
            .copied()
            .unwrap_or(Mark::New)
            == Mark::New
        {
            visit(p, by_name, &mut marks, &mut Vec::new(), problems);
        }
    }
}
