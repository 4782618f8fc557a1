//! The service's deployment configuration (minimum/maximum percent, the circuit breaker)
//! and its health-check grace period, tested against a fake of the engine's `ServiceApi`:
//! moto's `describe_services` leaves these out (reference/moto.md), so against moto the
//! planner can neither see them differ nor see them converge. Everything else (the network,
//! the ALB, the task definitions) still goes to moto.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::types as ecs;
use berth_aws::{BoxFuture, Clients, DeploymentRecord, Engine, ServiceApi, ServiceRequest};
use berth_testkit::Moto;

use crate::lifecycle::{fast, push_image, up};
use crate::support::{REGION, example_stack, plan_lines, sdk_config};

/// ECS as far as services go, reporting every field it was given (as AWS does), with the
/// running count equal to the desired one (every service stable at once).
///
/// An update starts a deployment IN_PROGRESS; each later describe takes the next scripted
/// step of its rollout (`script`), as ECS's answers would move along.
#[derive(Debug, Default)]
pub struct FakeServices {
    services: Mutex<BTreeMap<String, ecs::Service>>,
    /// ("create" | "update" | "delete", the request), in order.
    calls: Mutex<Vec<(&'static str, Option<ServiceRequest>)>>,
    rollout: Mutex<VecDeque<RolloutStep>>,
    /// The deployment history, newest first, as the test sets it.
    history: Mutex<Vec<DeploymentRecord>>,
    /// StopServiceDeployment(ROLLBACK)'s deployments, in order.
    stops: Mutex<Vec<String>>,
    /// The statuses the stopped deployment goes through, one per history call.
    stop_script: Mutex<VecDeque<ecs::ServiceDeploymentStatus>>,
    /// Whole histories, one per history call (the last one stays).
    history_script: Mutex<VecDeque<Vec<DeploymentRecord>>>,
}

/// One describe's view of the newest deployment.
#[derive(Debug, Clone)]
pub enum RolloutStep {
    InProgress,
    Completed,
    /// The circuit breaker: the reason and the event ECS writes.
    Failed(&'static str, &'static str),
}

fn deployment(task_definition: &str, count: i32, step: &RolloutStep) -> ecs::Deployment {
    let (state, running) = match step {
        RolloutStep::InProgress => (ecs::DeploymentRolloutState::InProgress, 0),
        RolloutStep::Completed => (ecs::DeploymentRolloutState::Completed, count),
        RolloutStep::Failed(..) => (ecs::DeploymentRolloutState::Failed, 0),
    };
    ecs::Deployment::builder()
        .status("PRIMARY")
        .task_definition(task_definition)
        .desired_count(count)
        .running_count(running)
        .rollout_state(state)
        .set_rollout_state_reason(match step {
            RolloutStep::Failed(reason, _) => Some((*reason).to_owned()),
            _ => None,
        })
        .build()
}

impl FakeServices {
    /// The steps the next rollout goes through, one per describe.
    pub fn script(&self, steps: impl IntoIterator<Item = RolloutStep>) {
        *self.rollout.lock().unwrap() = steps.into_iter().collect();
    }

    /// The service's deployments, newest first.
    pub fn set_history(&self, history: Vec<DeploymentRecord>) {
        *self.history.lock().unwrap() = history;
    }

    /// The statuses a stopped deployment goes through, one per history call.
    pub fn script_stop(&self, steps: impl IntoIterator<Item = ecs::ServiceDeploymentStatus>) {
        *self.stop_script.lock().unwrap() = steps.into_iter().collect();
    }

    /// The histories the next history calls answer, one each (the last one stays): a
    /// blue/green, canary or linear deployment moving through its stages.
    pub fn script_history(&self, steps: impl IntoIterator<Item = Vec<DeploymentRecord>>) {
        *self.history_script.lock().unwrap() = steps.into_iter().collect();
    }

    /// The deployments stopped with ROLLBACK.
    pub fn stops(&self) -> Vec<String> {
        self.stops.lock().unwrap().clone()
    }

    pub fn calls(&self) -> Vec<(&'static str, Option<ServiceRequest>)> {
        self.calls.lock().unwrap().clone()
    }

    pub fn service(&self, name: &str) -> ecs::Service {
        self.services.lock().unwrap()[name].clone()
    }

    /// The service's deployments as ECS would list them now (newest first).
    pub fn set_deployments(&self, name: &str, deployments: Vec<ecs::Deployment>) {
        self.edit(name, |s| {
            s.into_builder().set_deployments(Some(deployments)).build()
        });
    }

    /// Someone changed the service outside berth (the console, another tool).
    fn edit(&self, name: &str, f: impl FnOnce(ecs::Service) -> ecs::Service) {
        let mut services = self.services.lock().unwrap();
        let edited = f(services[name].clone());
        services.insert(name.to_owned(), edited);
    }

    fn apply(&self, r: &ServiceRequest, current: Option<ecs::Service>) -> ecs::Service {
        let first = current.is_none();
        let current = current.unwrap_or_else(|| {
            ecs::Service::builder()
                .service_arn(format!(
                    "arn:aws:ecs:{REGION}:123456789012:service/{}/{}",
                    r.cluster, r.name
                ))
                .service_name(&r.name)
                .launch_type(ecs::LaunchType::Fargate)
                .set_load_balancers(r.load_balancer.clone().map(|l| vec![l]))
                .build()
        });
        let count = r.desired_count.unwrap_or(current.desired_count());
        let mut b = current.into_builder();
        b = b
            .status("ACTIVE")
            .task_definition(format!(
                "arn:aws:ecs:{REGION}:123456789012:task-definition/{}:1",
                r.task_definition
            ))
            .desired_count(count)
            .running_count(count)
            .network_configuration(r.network.clone())
            .deployment_configuration(r.deployment.clone())
            .health_check_grace_period_seconds(r.grace_period_secs);
        // A creation is stable at once; an update starts a rollout.
        let step = if first {
            RolloutStep::Completed
        } else {
            RolloutStep::InProgress
        };
        b.set_deployments(Some(vec![deployment(&r.task_definition, count, &step)]))
            .build()
    }
}

/// `ecs::Service` has no `into_builder`; this copies the fields the fake keeps.
trait IntoBuilder {
    fn into_builder(self) -> ecs::builders::ServiceBuilder;
}

impl IntoBuilder for ecs::Service {
    fn into_builder(self) -> ecs::builders::ServiceBuilder {
        ecs::Service::builder()
            .set_service_arn(self.service_arn().map(str::to_owned))
            .set_service_name(self.service_name().map(str::to_owned))
            .set_launch_type(self.launch_type().cloned())
            .set_load_balancers(Some(self.load_balancers().to_vec()))
            .desired_count(self.desired_count())
            .set_network_configuration(self.network_configuration().cloned())
            .set_deployment_configuration(self.deployment_configuration().cloned())
            .set_health_check_grace_period_seconds(self.health_check_grace_period_seconds())
            .set_task_definition(self.task_definition().map(str::to_owned))
            .set_status(self.status().map(str::to_owned))
            .set_deployments(Some(self.deployments().to_vec()))
            .set_events(Some(self.events().to_vec()))
    }
}

impl ServiceApi for FakeServices {
    fn describe<'a>(
        &'a self,
        _cluster: &'a str,
        names: Vec<String>,
    ) -> BoxFuture<'a, berth_aws::Result<Vec<ecs::Service>>> {
        let mut services = self.services.lock().unwrap();
        if let Some(step) = self.rollout.lock().unwrap().pop_front() {
            for name in &names {
                let Some(current) = services.get(name).cloned() else {
                    continue;
                };
                let Some(newest) = current.deployments().first().cloned() else {
                    continue;
                };
                let mut b = current.into_builder().set_deployments(Some(vec![deployment(
                    newest.task_definition().unwrap_or(""),
                    newest.desired_count(),
                    &step,
                )]));
                if let RolloutStep::Failed(_, event) = step {
                    b = b.events(ecs::ServiceEvent::builder().message(event).build());
                }
                services.insert(name.clone(), b.build());
            }
        }
        let found = names
            .iter()
            .filter_map(|n| services.get(n).cloned())
            .collect();
        Box::pin(async move { Ok(found) })
    }

    fn create(&self, request: ServiceRequest) -> BoxFuture<'_, berth_aws::Result<String>> {
        let service = self.apply(&request, None);
        let arn = service.service_arn().unwrap_or("").to_owned();
        self.services
            .lock()
            .unwrap()
            .insert(request.name.clone(), service);
        self.calls.lock().unwrap().push(("create", Some(request)));
        Box::pin(async move { Ok(arn) })
    }

    fn update(&self, request: ServiceRequest) -> BoxFuture<'_, berth_aws::Result<()>> {
        let current = self.services.lock().unwrap().get(&request.name).cloned();
        let service = self.apply(&request, current);
        self.services
            .lock()
            .unwrap()
            .insert(request.name.clone(), service);
        self.calls.lock().unwrap().push(("update", Some(request)));
        Box::pin(async move { Ok(()) })
    }

    fn delete<'a>(
        &'a self,
        _cluster: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, berth_aws::Result<()>> {
        self.services.lock().unwrap().remove(name);
        self.calls.lock().unwrap().push(("delete", None));
        Box::pin(async move { Ok(()) })
    }

    fn history<'a>(
        &'a self,
        _cluster: &'a str,
        _name: &'a str,
    ) -> BoxFuture<'a, berth_aws::Result<Vec<DeploymentRecord>>> {
        let mut history = self.history.lock().unwrap();
        if let Some(next) = self.history_script.lock().unwrap().pop_front() {
            *history = next;
        }
        if let Some(stopped) = self.stops.lock().unwrap().last()
            && let Some(status) = self.stop_script.lock().unwrap().pop_front()
        {
            for d in history.iter_mut().filter(|d| &d.arn == stopped) {
                d.status = status.clone();
            }
        }
        let found = history.clone();
        Box::pin(async move { Ok(found) })
    }

    fn roll_back<'a>(&'a self, deployment_arn: &'a str) -> BoxFuture<'a, berth_aws::Result<()>> {
        self.stops.lock().unwrap().push(deployment_arn.to_owned());
        for d in self
            .history
            .lock()
            .unwrap()
            .iter_mut()
            .filter(|d| d.arn == deployment_arn)
        {
            d.status = ecs::ServiceDeploymentStatus::RollbackRequested;
        }
        Box::pin(async move { Ok(()) })
    }
}

/// An engine on the stack's production environment whose service calls go to a new fake.
pub async fn engine_with_fake(
    sdk: &aws_config::SdkConfig,
    stack: &berth_spec::Stack,
) -> (Arc<FakeServices>, Engine) {
    let fake = Arc::new(FakeServices::default());
    let aws = stack
        .environment("production")
        .and_then(|e| e.as_aws())
        .expect("production runs on AWS")
        .clone();
    let clients = Clients::from_sdk(sdk).with_services(fake.clone());
    let engine = Engine::with_clients("production", &aws, clients)
        .await
        .expect("engine");
    (fake, engine)
}

fn breaker(s: &ecs::Service) -> (bool, bool) {
    let cb = s
        .deployment_configuration()
        .and_then(|d| d.deployment_circuit_breaker())
        .expect("a circuit breaker");
    (cb.enable(), cb.rollback())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_configuration_and_grace_period_converge() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let mut stack = example_stack();
    let (fake, engine) = engine_with_fake(&sdk, &stack).await;

    up(&engine, &stack, fast()).await.expect("first up");
    push_image(&sdk, "frontend-repo", "abc1234").await;
    push_image(&sdk, "backend-repo", "abc1234").await;
    up(&engine, &stack, fast()).await.expect("second up");

    // Created with the seed's deployment configuration and grace period.
    let backend = stack.services[1].clone();
    let created = fake.service(&backend.service_name);
    let d = created
        .deployment_configuration()
        .expect("deployment config");
    assert_eq!(
        (d.minimum_healthy_percent(), d.maximum_percent()),
        (
            Some(backend.deployment.minimum_healthy_percent as i32),
            Some(backend.deployment.maximum_percent as i32)
        )
    );
    assert_eq!(
        breaker(&created),
        (
            backend.deployment.circuit_breaker.enable,
            backend.deployment.circuit_breaker.rollback
        )
    );
    assert_eq!(
        created.health_check_grace_period_seconds(),
        Some(backend.deployment.health_check_grace_period.as_secs() as i32)
    );
    let creates = fake.calls().iter().filter(|(c, _)| *c == "create").count();
    assert_eq!(creates, 2);

    // Reported as made: nothing to do (against moto this holds only because the fields
    // are absent; here they are present and equal).
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert!(plan.is_empty(), "{plan}");

    // Changed in the stack: the plan names exactly these, and the update carries them.
    stack.services[1].deployment.circuit_breaker.rollback =
        !stack.services[1].deployment.circuit_breaker.rollback;
    stack.services[1].deployment.health_check_grace_period = Duration::from_secs(90);
    stack.services[1].deployment.minimum_healthy_percent = 50;
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    let changes: Vec<String> = plan_lines(&plan)
        .iter()
        .map(|line| line.split(':').next().unwrap_or(line).to_owned())
        .collect();
    assert_eq!(
        changes,
        [
            "service/backend circuit_breaker",
            "service/backend health_check_grace_period",
            "service/backend minimum_healthy_percent",
        ],
        "{plan}"
    );
    let before = fake.calls().len();
    up(&engine, &stack, fast()).await.expect("up with changes");
    let calls = fake.calls();
    assert_eq!(calls.len(), before + 1, "{calls:?}");
    let (call, Some(request)) = &calls[before] else {
        panic!("{calls:?}")
    };
    assert_eq!(*call, "update");
    assert_eq!(request.grace_period_secs, 90);
    assert_eq!(request.deployment.minimum_healthy_percent(), Some(50));
    let updated = fake.service(&backend.service_name);
    assert_eq!(
        breaker(&updated).1,
        stack.services[1].deployment.circuit_breaker.rollback
    );
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert!(plan.is_empty(), "{plan}");

    // Turned off outside berth: the next up turns the circuit breaker back on.
    fake.edit(&backend.service_name, |s| {
        let off = ecs::DeploymentConfiguration::builder()
            .set_minimum_healthy_percent(
                s.deployment_configuration()
                    .and_then(|d| d.minimum_healthy_percent()),
            )
            .set_maximum_percent(
                s.deployment_configuration()
                    .and_then(|d| d.maximum_percent()),
            )
            .deployment_circuit_breaker(
                ecs::DeploymentCircuitBreaker::builder()
                    .enable(false)
                    .rollback(false)
                    .build(),
            )
            .build();
        s.into_builder().deployment_configuration(off).build()
    });
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert_eq!(plan.steps.len(), 1, "{plan}");
    up(&engine, &stack, fast()).await.expect("up restores");
    assert_eq!(
        breaker(&fake.service(&backend.service_name)),
        (
            stack.services[1].deployment.circuit_breaker.enable,
            stack.services[1].deployment.circuit_breaker.rollback
        )
    );
}
