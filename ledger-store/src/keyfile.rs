//! Reading Ed25519 private keys from PKCS#8 PEM files, refusing files readable by others.

use std::path::Path;

use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::SigningKey;

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file cannot be read.
    #[error("reading key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Group or others may read it.
    #[error("key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}` first")]
    TooOpen {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// It is a public key, where a private key was needed.
    #[error("{path} is a public key; give the private key file it was written beside (without `.pub`)")]
    PublicKey {
        /// The file.
        path: String,
    },
    /// It is not an Ed25519 PKCS#8 PEM private key.
    #[error("{path} is not an Ed25519 PKCS#8 PEM private key")]
    NotAKey {
        /// The file.
        path: String,
    },
}

/// Reads a PKCS#8 PEM Ed25519 private key, refusing a file readable by group or others.
///
/// # Errors
/// [`KeyFileError`] naming the file and what is wrong.
pub fn read_private(path: &Path) -> Result<SigningKey, KeyFileError> {
    let p = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| KeyFileError::Io { path: p.clone(), source })?;
    // A public key is readable by all on purpose: say what it is before judging its mode.
    if meta.len() < 64 * 1024 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains("-----BEGIN PUBLIC KEY-----") {
            return Err(KeyFileError::PublicKey { path: p });
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::TooOpen { path: p, mode });
        }
    }
    let _ = meta;
    let pem = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io { path: p.clone(), source })?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|_| KeyFileError::NotAKey { path: p })
}
