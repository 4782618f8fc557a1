//! HTTP handlers, one module per concern.

pub mod download;
pub mod files;
pub mod health;
pub mod transform;
pub mod upload;

use serde::Serialize;
use serde_json::{Value, json};

/// The original's success envelope: `{success: true, data}` plus extra top-level fields.
pub fn success(data: impl Serialize, extra: Value) -> Value {
    let mut body = json!({ "success": true, "data": data });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    body
}
