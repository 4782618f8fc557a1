//! The SDK clients, built once from the standard credential chain, each with a recorder
//! that counts the calls (the "nothing changed, nothing called" property is tested on it)
//! and can fail a chosen mutating call (the convergence tests use that).

use std::sync::{Arc, Mutex};

use crate::services::{SdkServices, ServiceApi};

use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Whether an operation changes the account (anything but Describe/Get/List).
pub fn is_mutating(operation: &str) -> bool {
    !["Describe", "Get", "List"]
        .iter()
        .any(|p| operation.starts_with(p))
}

#[derive(Debug, Default)]
struct RecorderState {
    /// `Service.Operation`, in call order.
    calls: Vec<String>,
    /// Fail the mutating call with this index (counted from when it was set).
    fail_at: Option<usize>,
    mutating_since_armed: usize,
}

/// Records every call made through the clients.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<RecorderState>>);

impl Recorder {
    /// Every call so far (`EC2.CreateVpc`), in order.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The mutating calls so far.
    pub fn mutating(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| is_mutating(c.rsplit('.').next().unwrap_or(c)))
            .collect()
    }

    pub fn clear(&self) {
        self.lock().calls.clear();
    }

    /// Makes the `n`-th mutating call from now (0: the next one) fail without being sent;
    /// `None` stops injecting.
    pub fn fail_mutating_call(&self, n: Option<usize>) {
        let mut state = self.lock();
        state.fail_at = n;
        state.mutating_since_armed = 0;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecorderState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "berth-recorder"
    }

    // Not `read_before_execution`: a client's interceptors run that hook before the
    // operation's configuration (its `Metadata`) is in the bag.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let mut state = self.lock();
        state
            .calls
            .push(format!("{}.{}", meta.service(), meta.name()));
        if is_mutating(meta.name()) {
            let index = state.mutating_since_armed;
            state.mutating_since_armed += 1;
            if state.fail_at == Some(index) {
                state.fail_at = None;
                return Err(format!("injected failure of {}", meta.name()).into());
            }
        }
        Ok(())
    }
}

/// One client per service the engine uses.
#[derive(Debug, Clone)]
pub struct Clients {
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) ecr: aws_sdk_ecr::Client,
    pub(crate) rds: aws_sdk_rds::Client,
    pub(crate) ssm: aws_sdk_ssm::Client,
    pub(crate) logs: aws_sdk_cloudwatchlogs::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) ecs: aws_sdk_ecs::Client,
    pub(crate) sts: aws_sdk_sts::Client,
    pub(crate) scaling: aws_sdk_applicationautoscaling::Client,
    /// The ECS service calls (a fake in the tests of what moto does not emulate).
    pub(crate) services: Arc<dyn ServiceApi>,
    pub recorder: Recorder,
}

macro_rules! client {
    ($krate:ident, $sdk:expr, $rec:expr) => {
        $krate::Client::from_conf(
            $krate::config::Builder::from($sdk)
                .interceptor($rec.clone())
                .build(),
        )
    };
}

impl Clients {
    /// Credentials and endpoint from the standard chain (environment, profiles, SSO,
    /// instance roles; `AWS_ENDPOINT_URL` honoured), in `region`, with `profile` if set.
    pub async fn from_env(region: &str, profile: Option<&str>) -> Clients {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_owned()));
        if let Some(profile) = profile {
            loader = loader.profile_name(profile);
        }
        Clients::from_sdk(&loader.load().await)
    }

    /// Clients from an SDK configuration made elsewhere (the tests point one at moto).
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Clients {
        let rec = Recorder::default();
        let ecs = client!(aws_sdk_ecs, sdk, rec);
        Clients {
            services: Arc::new(SdkServices(ecs.clone())),
            ec2: client!(aws_sdk_ec2, sdk, rec),
            iam: client!(aws_sdk_iam, sdk, rec),
            ecr: client!(aws_sdk_ecr, sdk, rec),
            rds: client!(aws_sdk_rds, sdk, rec),
            ssm: client!(aws_sdk_ssm, sdk, rec),
            logs: client!(aws_sdk_cloudwatchlogs, sdk, rec),
            elb: client!(aws_sdk_elasticloadbalancingv2, sdk, rec),
            ecs,
            sts: client!(aws_sdk_sts, sdk, rec),
            scaling: client!(aws_sdk_applicationautoscaling, sdk, rec),
            recorder: rec,
        }
    }

    /// The same clients with the ECS service calls going to `services` (the tests' fake
    /// for what moto does not report).
    pub fn with_services(mut self, services: Arc<dyn ServiceApi>) -> Clients {
        self.services = services;
        self
    }
}
