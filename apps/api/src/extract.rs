//! Request parsing that answers a client's mistake with a 400 and a clear message.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::error::AppError;

/// A JSON body; an empty body reads as `{}` (so `/compress` works without one), and the
/// Content-Type is not insisted on (the original accepted what its frontend sent).
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| AppError::client(rejection.status(), rejection.body_text()))?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(JsonBody)
            .map_err(|e| AppError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// A file id from the path: not a UUID is the client's mistake (400), never a 500.
pub fn file_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw)
        .map_err(|_| AppError::bad_request(format!("`{}` is not a file id (a UUID)", clip(raw))))
}

/// An optional whole number `field` in `min..=max`, given as a JSON number or a numeric
/// string (HTML forms send strings).
pub fn whole_number(
    value: Option<&Value>,
    field: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, AppError> {
    let parsed = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match parsed {
        Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(AppError::bad_request(format!(
            "`{field}` must be a whole number from {min} to {max} (got {})",
            clip(&value.map(Value::to_string).unwrap_or_default())
        ))),
    }
}

/// Echo client input in messages without echoing a megabyte of it.
pub fn clip(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_numbers_accept_numbers_and_numeric_strings() {
        assert_eq!(whole_number(Some(&json!(0)), "x", 0, 10).unwrap(), Some(0));
        assert_eq!(
            whole_number(Some(&json!("7")), "x", 0, 10).unwrap(),
            Some(7)
        );
        assert_eq!(whole_number(None, "x", 0, 10).unwrap(), None);
        assert!(whole_number(Some(&json!(-1)), "x", 0, 10).is_err());
        assert!(whole_number(Some(&json!(1.5)), "x", 0, 10).is_err());
        assert!(whole_number(Some(&json!("abc")), "x", 0, 10).is_err());
        assert!(whole_number(Some(&json!(11)), "x", 0, 10).is_err());
    }

    #[test]
    fn ids_must_be_uuids() {
        assert!(file_id("not-a-uuid").is_err());
        assert!(file_id("6f1c2b8e-6d4a-4a53-9f7e-2d2f1b0f3c11").is_ok());
    }
}
