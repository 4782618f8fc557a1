//! The engine's errors: each names the AWS call and says what to do.

use std::time::Duration;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Why an AWS operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed; `hint` says what to do about it.
    #[error("{call} failed: {detail}")]
    Call {
        call: &'static str,
        detail: String,
        hint: &'static str,
    },
    #[error(
        "the credentials belong to account {actual}, but environment {environment} is for account {expected}"
    )]
    WrongAccount {
        environment: String,
        expected: String,
        actual: String,
    },
    #[error("timed out after {}s waiting for {what}", waited.as_secs())]
    Timeout { what: String, waited: Duration },
    /// A resource with the stack's name exists but belongs to something else.
    #[error("{kind} {name} exists but is not part of stack {stack} (no berth:stack tag)")]
    Foreign {
        kind: &'static str,
        name: String,
        stack: String,
    },
    /// A step of a plan failed.
    #[error("cannot {action} {id}")]
    Step {
        action: &'static str,
        id: String,
        #[source]
        source: Box<Error>,
    },
    /// A deployment ended FAILED (the circuit breaker, or rolled back).
    #[error(
        "the deployment of {service} revision {revision} failed: {reason}{}",
        events_text(events)
    )]
    Rollout {
        service: String,
        revision: i32,
        reason: String,
        /// The service's most recent events, newest first.
        events: Vec<String>,
    },
    /// `rollback` with no deployment in progress and no earlier completed revision.
    #[error(
        "nothing to roll back to: service {service} has no deployment in progress and no earlier completed revision"
    )]
    NothingToRollBack { service: String },
    /// PutParameter of an existing name without overwrite (the caller's to fix: exit 2).
    #[error("parameter {name} already exists (ParameterAlreadyExists)")]
    ParameterExists { name: String },
    /// The stack file (or `--strategy`) asks for what ECS cannot carry out as written
    /// (shell hooks, a rule ECS cannot move): the caller's to fix, exit 2.
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Other(String),
}

fn events_text(events: &[String]) -> String {
    if events.is_empty() {
        String::new()
    } else {
        format!("; last events: {}", events.join(" | "))
    }
}

impl Error {
    /// What the person at the terminal can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Call { hint, .. } if !hint.is_empty() => Some(hint),
            Error::WrongAccount { .. } => Some(
                "select the right credentials (AWS_PROFILE, or the environment's `profile`), or fix `account_id`",
            ),
            Error::Foreign { .. } => Some(
                "rename the resource in berth.toml, or delete the existing one if it is not needed",
            ),
            Error::Timeout { .. } => Some("run the command again: it continues where it stopped"),
            Error::Step { source, .. } => source.hint(),
            Error::ParameterExists { .. } => {
                Some("add --overwrite to replace it (as a new version)")
            }
            Error::Rollout { .. } => Some(
                "fix what the events say (the image, the health check, the secrets), then deploy again",
            ),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error code of a failed call (`NoSuchEntity`), if the service sent one.
pub(crate) fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// Maps an SDK error of `call` into an [`Error`] with a hint chosen by its kind.
pub(crate) fn call<E, R>(call: &'static str) -> impl FnOnce(SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    move |e| {
        let (detail, hint) = match &e {
            SdkError::ServiceError(s) => {
                let err = s.err();
                let code = err.code().unwrap_or("error");
                let message = err.message().unwrap_or("");
                let hint = if code.contains("AccessDenied") || code.contains("Unauthorized") {
                    "grant this permission to the identity of the credentials, then run again"
                } else if code.contains("LimitExceeded") || code.contains("Quota") {
                    "raise the quota in Service Quotas, or free resources in this Region, then run again"
                } else if code.contains("ExpiredToken") || code.contains("InvalidClientTokenId") {
                    "refresh the credentials (aws sso login, or new access keys), then run again"
                } else {
                    "run again once fixed: the command continues where it stopped"
                };
                (format!("{code}: {message}"), hint)
            }
            SdkError::DispatchFailure(d) if d.is_user() || d.as_other().is_none() => (
                format!(
                    "{}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                ),
                "configure AWS credentials (environment variables, a profile, aws sso login or an instance role)",
            ),
            _ => (
                format!(
                    "{}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                ),
                "check the network and the credentials, then run again",
            ),
        };
        Error::Call { call, detail, hint }
    }
}

/// Maps an SDK builder's refusal (a required field left unset) into an [`Error`] naming
/// what was being built: a bug in berth, reported instead of a panic.
pub(crate) fn build(
    what: &'static str,
) -> impl FnOnce(aws_smithy_types::error::operation::BuildError) -> Error {
    move |e| Error::Other(format!("cannot build {what}: {e}"))
}
