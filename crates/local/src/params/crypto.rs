//! Encryption of SecureString values at rest: XChaCha20-Poly1305 with a random 192-bit nonce
//! per value and the parameter name as associated data, so a ciphertext copied onto another
//! parameter fails to decrypt instead of leaking under the wrong name.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use crate::state_dir::{self, FsError};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {} is not {KEY_LEN} bytes; it is damaged or not berth's", path.display())]
    BadKeyFile { path: PathBuf },
    #[error("the operating system's random number generator failed: {reason}")]
    Random { reason: String },
    #[error("encrypting a SecureString failed")]
    Encrypt,
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// An encrypted value as stored in the data file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sealed {
    /// Hex.
    pub nonce: String,
    /// Hex; ciphertext followed by the 16-byte tag.
    pub ciphertext: String,
}

/// The store's encryption key.
pub struct StoreKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(********)")
    }
}

/// The value could not be decrypted: wrong key, or tampered data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecryptFailed;

impl StoreKey {
    /// Loads the key at `path`, creating it (mode 0600, from the OS RNG) on first use.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        match fs::read(path) {
            Ok(bytes) => Self::from_bytes(&bytes).ok_or_else(|| KeyError::BadKeyFile {
                path: path.to_path_buf(),
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let mut bytes = [0u8; KEY_LEN];
                fill_random(&mut bytes)?;
                state_dir::write_private_file_atomic(path, &bytes)?;
                tracing::info!(path = %path.display(), "created parameter store key");
                Ok(Self {
                    cipher: XChaCha20Poly1305::new(Key::from_slice(&bytes)),
                })
            }
            Err(e) => Err(FsError::new("read", path, e).into()),
        }
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == KEY_LEN).then(|| Self {
            cipher: XChaCha20Poly1305::new(Key::from_slice(bytes)),
        })
    }

    pub fn seal(&self, name: &str, plaintext: &str) -> Result<Sealed, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            // Encryption fails only for messages beyond 256 GiB; values are at most 4 KB.
            .map_err(|_| KeyError::Encrypt)?;
        Ok(Sealed {
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        })
    }

    pub fn open(&self, name: &str, sealed: &Sealed) -> Result<String, DecryptFailed> {
        let nonce = hex::decode(&sealed.nonce).map_err(|_| DecryptFailed)?;
        let ciphertext = hex::decode(&sealed.ciphertext).map_err(|_| DecryptFailed)?;
        if nonce.len() != NONCE_LEN {
            return Err(DecryptFailed);
        }
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| DecryptFailed)?;
        String::from_utf8(plain).map_err(|_| DecryptFailed)
    }
}

pub fn fill_random(buf: &mut [u8]) -> Result<(), KeyError> {
    getrandom::fill(buf).map_err(|e| KeyError::Random {
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_name_binding() {
        let tmp = tempfile::tempdir().unwrap();
        let key = StoreKey::load_or_create(&tmp.path().join("key")).unwrap();
        let sealed = key.seal("/a", "secret").unwrap();
        assert_eq!(key.open("/a", &sealed).unwrap(), "secret");
        assert_eq!(key.open("/b", &sealed), Err(DecryptFailed));
        let again = key.seal("/a", "secret").unwrap();
        assert_ne!(again.nonce, sealed.nonce, "a fresh nonce per value");
        let reloaded = StoreKey::load_or_create(&tmp.path().join("key")).unwrap();
        assert_eq!(reloaded.open("/a", &sealed).unwrap(), "secret");
    }
}
