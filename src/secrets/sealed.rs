//! The embedded secrets store: AES-256-GCM with a key from `SECRET_KEY` (base64 or hex
//! of 32 bytes), or from `DATA_DIR/secret.key`, generated with 0600 permissions on
//! first run. The sealed form is `sealed:v1:<base64(nonce || ciphertext)>`.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use base64::Engine as _;
use rand::RngCore;

use super::{SecretError, SecretStore};

const PREFIX: &str = "sealed:v1:";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Seals secrets with one key.
pub struct SealedStore {
    cipher: Aes256Gcm,
}

impl SealedStore {
    /// A store with this 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// The key from `SECRET_KEY` if given, else from `data_dir/secret.key`,
    /// generating that file on first run.
    pub fn load_or_create(secret_key: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        if let Some(text) = secret_key {
            return Ok(Self::new(&parse_key(text).ok_or_else(|| {
                anyhow::anyhow!(
                    "invalid configuration SECRET_KEY: expected 32 bytes as base64 or hex"
                )
            })?));
        }
        let path = data_dir.join("secret.key");
        if path.exists() {
            let text = std::fs::read_to_string(&path)?;
            let key = parse_key(text.trim()).ok_or_else(|| {
                anyhow::anyhow!("'{}' does not hold a 32-byte key", path.display())
            })?;
            return Ok(Self::new(&key));
        }
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        std::fs::create_dir_all(data_dir)?;
        write_private(&path, &B64.encode(key))?;
        tracing::warn!(
            secret_key.path = %path.display(),
            "created a new secret key for sealing stored secrets; back it up, secrets sealed with it are lost without it"
        );
        Ok(Self::new(&key))
    }

    /// Seals a value.
    pub fn seal(&self, value: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        // Encryption with a valid key and a fresh nonce cannot fail for in-memory data.
        out.extend(
            self.cipher
                .encrypt(Nonce::from_slice(&nonce), value.as_bytes())
                .unwrap_or_default(),
        );
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// Opens a sealed value.
    pub fn open(&self, sealed: &str) -> Result<String, SecretError> {
        let body = sealed
            .strip_prefix(PREFIX)
            .ok_or_else(|| SecretError::Corrupt("not a sealed value".into()))?;
        let bytes = B64
            .decode(body)
            .map_err(|e| SecretError::Corrupt(e.to_string()))?;
        if bytes.len() < 12 {
            return Err(SecretError::Corrupt("sealed value too short".into()));
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| SecretError::Corrupt("cannot be opened with this SECRET_KEY".into()))?;
        String::from_utf8(plain).map_err(|e| SecretError::Corrupt(e.to_string()))
    }
}

fn parse_key(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text)
        .ok()
        .filter(|b| b.len() == 32)
        .or_else(|| B64.decode(text).ok())?;
    bytes.try_into().ok()
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(content.as_bytes())
}

#[async_trait]
impl SecretStore for SealedStore {
    async fn put(&self, _owner: &str, _name: &str, value: &str) -> Result<String, SecretError> {
        Ok(self.seal(value))
    }

    async fn get(&self, stored: &str) -> Result<String, SecretError> {
        self.open(stored)
    }

    async fn delete(&self, _stored: &str) -> Result<(), SecretError> {
        Ok(())
    }

    async fn probe(&self) -> Option<bool> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_same_key_only() {
        let store = SealedStore::new(&[7; 32]);
        let sealed = store.seal("refresh-me");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("refresh-me"));
        assert_eq!(store.open(&sealed).unwrap(), "refresh-me");
        assert!(SealedStore::new(&[8; 32]).open(&sealed).is_err());
        assert_ne!(store.seal("x"), store.seal("x"), "nonces must differ");
    }

    #[test]
    fn a_missing_key_is_generated_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = SealedStore::load_or_create(None, dir.path()).unwrap();
        let sealed = first.seal("s");
        let path = dir.path().join("secret.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let second = SealedStore::load_or_create(None, dir.path()).unwrap();
        assert_eq!(second.open(&sealed).unwrap(), "s");
    }

    #[test]
    fn a_malformed_secret_key_is_refused_naming_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let err = SealedStore::load_or_create(Some("short"), dir.path())
            .err()
            .unwrap();
        assert!(err.to_string().contains("SECRET_KEY"));
    }
}
