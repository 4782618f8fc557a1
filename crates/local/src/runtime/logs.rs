//! Task output into the stack's log groups: stream `<prefix>/<container>/<task-id>` (S8.2).

use std::collections::HashMap;
use std::sync::Arc;

use berth_spec::{LocalEnvironment, Stack};

use super::launcher::LogStreams;
use crate::logs::{LogStore, stream_name};
use crate::state_dir::StateDir;
use crate::task::{TaskId, TaskOutput};

/// Where one service's tasks log.
struct ServiceLogs {
    group: String,
    prefix: String,
    container: String,
}

struct StoreStreams {
    store: LogStore,
    /// By ECS service name.
    services: HashMap<String, ServiceLogs>,
}

impl LogStreams for StoreStreams {
    fn open(&self, service: &str, task: &TaskId) -> TaskOutput {
        let Some(logs) = self.services.get(service) else {
            return TaskOutput::Null;
        };
        let stream = stream_name(&logs.prefix, &logs.container, task.as_str());
        match self.store.sink(&logs.group, &stream) {
            Ok(sink) => TaskOutput::Lines(Arc::new(sink)),
            Err(error) => {
                tracing::warn!(%error, group = %logs.group, %stream, "cannot open the task's log stream");
                TaskOutput::Null
            }
        }
    }
}

/// Opens the log store and creates every service's group (with its retention), each capped
/// at the local environment's `log_group_max_mb`.
pub fn log_streams(
    stack: &Stack,
    state: &StateDir,
    local: &LocalEnvironment,
) -> Option<Arc<dyn LogStreams>> {
    let store = match LogStore::open(state) {
        Ok(store) => store.with_group_cap(u64::from(local.log_group_max_mb) << 20),
        Err(error) => {
            tracing::warn!(%error, "cannot open the log store: task output is discarded");
            return None;
        }
    };
    let mut services = HashMap::new();
    for service in &stack.services {
        if let Err(error) = store.create_group(&service.logs.group, service.logs.retention_days) {
            tracing::warn!(%error, group = %service.logs.group, "cannot create the log group");
            continue;
        }
        services.insert(
            service.service_name.clone(),
            ServiceLogs {
                group: service.logs.group.clone(),
                prefix: service.logs.stream_prefix.clone(),
                container: service.container_name.clone(),
            },
        );
    }
    Some(Arc::new(StoreStreams { store, services }))
}
