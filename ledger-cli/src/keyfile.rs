//! Key files: Ed25519 private keys as PKCS#8 PEM (mode 0600), public keys as SPKI PEM or hex.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

/// A fresh random signing key from the operating system's generator.
pub fn generate() -> Result<SigningKey> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::getrandom(seed.as_mut())
        .map_err(|e| anyhow::anyhow!("reading the system random number generator: {e}"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes `key` as PKCS#8 PEM to `path` with mode 0600, and its public key as SPKI PEM to
/// `path.pub`. Refuses to overwrite an existing file.
pub fn write_private(path: &Path, key: &SigningKey) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let pem = key.to_pkcs8_pem(LineEnding::LF).context("encoding the private key as PKCS#8")?;
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f =
        opts.open(path).with_context(|| format!("creating key file {} (it must not exist yet)", path.display()))?;
    f.write_all(pem.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    f.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    let public = key.verifying_key().to_public_key_pem(LineEnding::LF).context("encoding the public key")?;
    let pub_path = public_path(path);
    fs::write(&pub_path, public).with_context(|| format!("writing {}", pub_path.display()))?;
    Ok(())
}

/// `key.pem` → `key.pem.pub`.
pub fn public_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    s.into()
}

/// Parses a public key given as 64 hex characters, or as the path of an SPKI PEM file.
pub fn read_public(arg: &str) -> Result<VerifyingKey> {
    if arg.len() == 64 && arg.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut b = [0u8; 32];
        hex::decode_to_slice(arg, &mut b).context("decoding the public key hex")?;
        return VerifyingKey::from_bytes(&b).map_err(|_| anyhow::anyhow!("`{arg}` is not a valid Ed25519 public key"));
    }
    let path = Path::new(arg);
    let pem = fs::read_to_string(path)
        .with_context(|| format!("`{arg}` is neither 64 hex characters nor a readable public key file"))?;
    VerifyingKey::from_public_key_pem(&pem)
        .map_err(|e| anyhow::anyhow!("{} is not an Ed25519 SPKI PEM public key: {e}", path.display()))
}
