//! The AWS engine (provisioning and releases through the ECS API).
//!
//! Empty until the AWS engine issue: no verb uses it yet, and none is shown in `berth --help`.
