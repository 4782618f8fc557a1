//! The pure planner: desired resources from the example stack and their diff.

use berth_aws::{Action, Value, desired, destroy, plan};

use crate::support::{as_actual, example_stack, known};

#[test]
fn empty_account_plans_every_resource_of_the_seed() {
    let stack = example_stack();
    let desired = desired(&stack, &known(true));
    let plan = plan(&desired, &[]);
    insta::assert_snapshot!("empty_account", plan.to_string());
    // Dependencies come first: each step's prerequisites are earlier in the plan.
    for (i, step) in plan.steps.iter().enumerate() {
        for dep in &step.after {
            let at = plan
                .steps
                .iter()
                .position(|s| &s.id == dep)
                .expect("dep planned");
            assert!(at < i, "{} planned before its dependency {dep}", step.id);
        }
    }
}

#[test]
fn services_wait_for_an_image() {
    let stack = example_stack();
    let plan = plan(&desired(&stack, &known(false)), &[]);
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| s.id.starts_with("service/") || s.id.starts_with("taskdef/"))
    );
    assert_eq!(
        plan.waiting_for_image,
        vec![
            ("frontend".to_owned(), "frontend-repo".to_owned()),
            ("backend".to_owned(), "backend-repo".to_owned())
        ]
    );
}

#[test]
fn nothing_changed_plans_nothing() {
    let stack = example_stack();
    let desired = desired(&stack, &known(true));
    let plan = plan(&desired, &as_actual(&desired));
    assert!(plan.is_empty(), "{plan}");
}

#[test]
fn a_changed_count_and_health_check_path_plan_exactly_those() {
    let mut stack = example_stack();
    let before = desired(&stack, &known(true));
    stack.services[1].desired_count = 3;
    stack.services[0].health_check.path = "/healthz".into();
    let plan = plan(&desired(&stack, &known(true)), &as_actual(&before));
    insta::assert_snapshot!("changed_count_and_path", plan.to_string());
    assert_eq!(plan.counts(), (0, 2, 0));
}

#[test]
fn secrets_are_never_shown_nor_a_difference() {
    let stack = example_stack();
    let desired = desired(&stack, &known(true));
    let text = plan(&desired, &[]).to_string();
    assert!(text.contains("master_password = (secret)"));
    // An account whose SecureString differs from anything berth could know: no change.
    let mut actual = as_actual(&desired);
    for a in &mut actual {
        if let Some(v) = a.attrs.get_mut("value")
            && *v == Value::Secret
        {
            *v = Value::Text("something else".into());
        }
    }
    let changed = plan(&desired, &actual);
    assert!(
        changed.steps.iter().all(|s| !s.id.contains("DB_PASSWORD")),
        "{changed}"
    );
}

#[test]
fn down_deletes_dependents_first() {
    let stack = example_stack();
    let desired = desired(&stack, &known(true));
    let plan = destroy(&desired, &as_actual(&desired));
    assert_eq!(plan.steps.len(), desired.resources.len());
    assert!(plan.steps.iter().all(|s| s.action == Action::Delete));
    let step = |id: &str| plan.steps.iter().find(|s| s.id == id).expect(id);
    // The VPC goes after its subnets, the security groups and the internet gateway.
    for dependent in ["subnet/public-1", "sg/alb", "igw", "tg/frontend"] {
        assert!(
            step("vpc").after.iter().any(|a| a == dependent),
            "vpc after {dependent}"
        );
    }
    // ECS-SG only after RDS-SG, which references it, and after the services.
    assert!(step("sg/ecs").after.iter().any(|a| a == "sg/rds"));
    assert!(step("sg/ecs").after.iter().any(|a| a == "service/backend"));
    insta::assert_snapshot!("down_order", plan.to_string());
}

#[test]
fn resource_ids_never_hold_an_empty_segment() {
    // Parameter names start with `/`: their ids are `param/ecs/...`, not `param//ecs/...`.
    let stack = example_stack();
    let desired = desired(&stack, &known(true));
    let ids: Vec<&str> = desired.resources.iter().map(|r| r.id.as_str()).collect();
    assert!(ids.contains(&"param/ecs/backend/DB_USER"), "{ids:?}");
    for id in ids {
        assert!(!id.contains("//") && !id.ends_with('/'), "{id}");
    }
}
