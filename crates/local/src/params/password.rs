//! Generated passwords: strong, random, URL-safe (they end up in connection strings).

use super::crypto::{KeyError, fill_random};
use super::secret::SecretString;

/// Letters and digits only: safe in URLs, shells and connection strings without escaping.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// 32 characters of a 62-letter alphabet: about 190 bits.
pub const PASSWORD_LEN: usize = 32;

/// A new random password from the OS RNG, without modulo bias (rejection sampling).
pub fn generate_password() -> Result<SecretString, KeyError> {
    // The largest multiple of the alphabet size that fits in a byte.
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut out = String::with_capacity(PASSWORD_LEN);
    let mut buf = [0u8; 64];
    while out.len() < PASSWORD_LEN {
        fill_random(&mut buf)?;
        for &b in buf.iter().filter(|&&b| b < limit) {
            if out.len() == PASSWORD_LEN {
                break;
            }
            out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
        }
    }
    Ok(SecretString::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_alphanumeric_and_different() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.expose().len(), PASSWORD_LEN);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
