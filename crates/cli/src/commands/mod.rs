//! One module per verb: `Args` (clap) and `run`.

pub mod aws;
pub mod aws_ops;
pub mod build;
mod build_image;
pub mod ci;
pub mod deploy;
pub mod deployments;
#[cfg(feature = "aws")]
pub mod doctor;
pub mod down;
pub mod explain;
pub mod images;
pub mod init;
pub mod local_state;
pub mod logs;
pub mod param;
#[cfg(feature = "aws")]
mod push;
pub mod rollback;
pub mod rollout;
pub mod running;
pub mod scale;
mod stalled;
pub mod status;
pub mod up;
pub mod validate;
