//! A secret value that cannot be logged by accident.

use std::fmt;

/// A string holding a secret (a SecureString's value, a password).
///
/// `Debug` and `Display` print `********`; the value is reachable only through
/// [`SecretString::expose`], so it shows up in code review wherever it leaves. The bytes are
/// overwritten when the value is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

/// What a secret looks like wherever it is shown.
pub const REDACTED: &str = "********";

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: for the one place that needs it (a task's environment, a
    /// database connection, `param get --with-decryption`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretString({REDACTED})")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.iter_mut().for_each(|b| *b = 0);
        // Keep the compiler from eliding the writes to memory about to be freed.
        std::hint::black_box(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let secret = SecretString::new("hunter2");
        assert_eq!(format!("{secret}"), REDACTED);
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{:?}", Some(&secret)).contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
    }
}
