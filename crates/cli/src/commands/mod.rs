//! One module per verb: `Args` (clap) and `run`.

pub mod build;
pub mod explain;
pub mod images;
pub mod init;
pub mod local_state;
pub mod logs;
pub mod param;
pub mod validate;
