//! One module per verb: `Args` (clap) and `run`.

pub mod explain;
pub mod init;
pub mod validate;
