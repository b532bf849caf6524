//! Secrets: the MUNGE key and the Slurm database password live as files in a
//! directory beside the inventory (0700, files 0600). A missing secret that closetctl
//! knows how to make is generated from the OS's random source; an existing one is never
//! replaced. Rotating is deliberate: move the file away and apply (see README).

use crate::desired::Secrets;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SecretError {
    #[error("secret `{name}` ({path}): {source}")]
    Io {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret `{name}` is missing: put it in `{path}` (mode 0600)")]
    Missing { name: String, path: PathBuf },
    #[error("secret `{name}` ({path}) is readable by others (mode {mode:04o}); run `chmod 600 {path}`")]
    TooOpen { name: String, path: PathBuf, mode: u32 },
    #[error("secret `{name}` ({path}) is empty")]
    Empty { name: String, path: PathBuf },
}

/// How to make a secret closetctl knows, or `None`.
fn generate(name: &str) -> Option<Vec<u8>> {
    let mut bytes = match name {
        // Debian's create-munge-key and mungekey both accept 1024 bytes; more than the minimum.
        "munge.key" => vec![0u8; 1024],
        "slurmdbd.password" => vec![0u8; 32],
        _ => return None,
    };
    getrandom::getrandom(&mut bytes).expect("the OS random source works");
    if name.ends_with(".password") {
        const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        for b in &mut bytes {
            *b = ALPHABET[*b as usize % ALPHABET.len()];
        }
    }
    Some(bytes)
}

/// Load each named secret from `dir`, generating the ones closetctl can make.
pub fn load(dir: &Path, names: &[String]) -> Result<Secrets, SecretError> {
    let mut secrets = Secrets::new();
    for name in names {
        let path = dir.join(name);
        let io = |source| SecretError::Io { name: name.clone(), path: path.clone(), source };
        if !path.exists() {
            let Some(bytes) = generate(name) else {
                return Err(SecretError::Missing { name: name.clone(), path });
            };
            std::fs::create_dir_all(dir).map_err(io)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
            tracing::info!(secret = %name, path = %path.display(), "generated a new secret");
        }
        let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::TooOpen { name: name.clone(), path, mode });
        }
        let bytes = std::fs::read(&path).map_err(io)?;
        if bytes.is_empty() {
            return Err(SecretError::Empty { name: name.clone(), path });
        }
        secrets.insert(name.clone(), bytes);
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let sdir = dir.path().join("secrets");
        let first = load(&sdir, &["munge.key".into()]).unwrap();
        assert_eq!(first["munge.key"].len(), 1024);
        let mode = std::fs::metadata(sdir.join("munge.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load(&sdir, &["munge.key".into()]).unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn an_open_or_unknown_secret_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path(), &["tailscale.key".into()]).unwrap_err();
        assert!(err.to_string().contains("is missing"), "{err}");
        std::fs::write(dir.path().join("x.key"), "k").unwrap();
        std::fs::set_permissions(dir.path().join("x.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(dir.path(), &["x.key".into()]).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
