//! Settlement keys: an encrypted JSON keystore file (the Web3 Secret Storage format geth and foundry use) or a
//! hex private key in an environment variable. Never a key on the command line.

use std::path::Path;

use alloy::signers::local::PrivateKeySigner;

/// Environment variable holding a hex private key (used when no keystore is given).
pub const KEY_ENV: &str = "JOBMESH_SETTLEMENT_KEY";
/// Environment variable holding the keystore password (when no password file is given).
pub const PASSWORD_ENV: &str = "JOBMESH_KEYSTORE_PASSWORD";

/// Why no signer could be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither a keystore nor the environment variable was given.
    #[error("no settlement key: pass --keystore FILE (password in ${PASSWORD_ENV} or --password-file) or set ${KEY_ENV}")]
    Missing,
    /// A keystore was given without a password.
    #[error("keystore {0} needs a password: set ${PASSWORD_ENV} or pass --password-file")]
    NoPassword(String),
    /// The password file cannot be read.
    #[error("cannot read password file {0}: {1}")]
    PasswordFile(String, std::io::Error),
    /// The keystore cannot be read or decrypted.
    #[error("cannot open keystore {0}: {1}")]
    Keystore(String, String),
    /// The environment variable is not a valid private key.
    #[error("${KEY_ENV} is not a valid hex private key")]
    BadHexKey,
    /// The keystore file already exists.
    #[error("{0} already exists; refusing to overwrite a key")]
    Exists(String),
}

fn read_password(keystore: &Path, password_file: Option<&Path>) -> Result<String, KeyError> {
    if let Some(p) = password_file {
        let s = std::fs::read_to_string(p)
            .map_err(|e| KeyError::PasswordFile(p.display().to_string(), e))?;
        return Ok(s.trim_end_matches(['\n', '\r']).to_owned());
    }
    std::env::var(PASSWORD_ENV).map_err(|_| KeyError::NoPassword(keystore.display().to_string()))
}

/// Loads the settlement signer from `keystore` (decrypted with the password file or `$JOBMESH_KEYSTORE_PASSWORD`)
/// or, without a keystore, from `$JOBMESH_SETTLEMENT_KEY`.
pub fn load_signer(
    keystore: Option<&Path>,
    password_file: Option<&Path>,
) -> Result<PrivateKeySigner, KeyError> {
    if let Some(path) = keystore {
        let password = read_password(path, password_file)?;
        return PrivateKeySigner::decrypt_keystore(path, password)
            .map_err(|e| KeyError::Keystore(path.display().to_string(), e.to_string()));
    }
    match std::env::var(KEY_ENV) {
        Ok(hex) => hex
            .trim()
            .parse::<PrivateKeySigner>()
            .map_err(|_| KeyError::BadHexKey),
        Err(_) => Err(KeyError::Missing),
    }
}

/// Creates a new random key and stores it encrypted at `path` (which must not exist yet).
pub fn create_keystore(
    path: &Path,
    password_file: Option<&Path>,
) -> Result<PrivateKeySigner, KeyError> {
    if path.exists() {
        return Err(KeyError::Exists(path.display().to_string()));
    }
    let password = read_password(path, password_file)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| KeyError::Keystore(path.display().to_string(), "not a file name".into()))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| KeyError::Keystore(dir.display().to_string(), e.to_string()))?;
    let signer = PrivateKeySigner::random();
    PrivateKeySigner::encrypt_keystore(
        dir,
        &mut rand::rngs::OsRng,
        signer.to_bytes(),
        password,
        Some(name),
    )
    .map_err(|e| KeyError::Keystore(path.display().to_string(), e.to_string()))?;
    Ok(signer)
}
