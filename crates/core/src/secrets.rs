//! Secrets: the MUNGE key and the Slurm database password live as files in a
//! directory beside the inventory (0700, files 0600). A missing secret that closetctl
//! knows how to make is generated from the OS's random source; an existing one is never
//! replaced. Rotating is deliberate: move the file away and apply (see README).
//! A secret closetctl never makes (the Tailscale auth key) may instead come from an
//! explicit file or an environment variable named in the inventory ([`load_external`]).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Secret values by name, loaded by the caller from the secrets directory.
pub type Secrets = std::collections::BTreeMap<String, Vec<u8>>;

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
    #[error(
        "secret `{name}` ({path}) is readable by others (mode {mode:04o}); run `chmod 600 {path}`"
    )]
    TooOpen {
        name: String,
        path: PathBuf,
        mode: u32,
    },
    #[error("secret `{name}` ({path}) is empty")]
    Empty { name: String, path: PathBuf },
    #[error("secret `{name}` is missing: environment variable `{var}` is not set or empty")]
    MissingEnv { name: String, var: String },
    #[error("secret `{name}` is needed but has no source: {hint}")]
    NoSource { name: String, hint: String },
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
        let io = |source| SecretError::Io {
            name: name.clone(),
            path: path.clone(),
            source,
        };
        if !path.exists() {
            let Some(bytes) = generate(name) else {
                return Err(SecretError::Missing {
                    name: name.clone(),
                    path,
                });
            };
            std::fs::create_dir_all(dir).map_err(io)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
            tracing::info!(secret = %name, path = %path.display(), "generated a new secret");
        }
        let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::TooOpen {
                name: name.clone(),
                path,
                mode,
            });
        }
        let bytes = std::fs::read(&path).map_err(io)?;
        if bytes.is_empty() {
            return Err(SecretError::Empty {
                name: name.clone(),
                path,
            });
        }
        secrets.insert(name.clone(), bytes);
    }
    Ok(secrets)
}

/// Where a secret from [`load_external`] goes, for a message about it being missing:
/// "put it in `PATH` (mode 0600)", "set the environment variable `VAR`", or which
/// setting names a source.
pub fn external_fix(file: Option<&Path>, env: Option<&str>) -> String {
    match (file, env) {
        (Some(path), _) => format!("put it in `{}` (mode 0600)", path.display()),
        (None, Some(var)) => format!("set the environment variable `{var}`"),
        (None, None) => {
            "set `auth_key_file` (a 0600 file) or `auth_key_env` in [tailscale]".to_string()
        }
    }
}

/// Whether `err` only says that the secret is not there (no file, no variable, no
/// source); a secret that is there but unusable (open mode, empty, unreadable) is not.
pub fn is_absent(err: &SecretError) -> bool {
    matches!(
        err,
        SecretError::Missing { .. } | SecretError::MissingEnv { .. } | SecretError::NoSource { .. }
    )
}

/// Load a secret from an explicit file (checked like the secrets directory's: present,
/// 0600 or stricter, not empty) or, without a file, from the environment variable `env`.
/// Surrounding whitespace (a trailing newline) is trimmed.
pub fn load_external(
    name: &str,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Vec<u8>, SecretError> {
    let bytes = match (file, env) {
        (Some(path), _) => {
            let path = path.to_path_buf();
            let io = |source| SecretError::Io {
                name: name.to_string(),
                path: path.clone(),
                source,
            };
            if !path.exists() {
                return Err(SecretError::Missing {
                    name: name.to_string(),
                    path,
                });
            }
            let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SecretError::TooOpen {
                    name: name.to_string(),
                    path,
                    mode,
                });
            }
            let bytes = std::fs::read(&path).map_err(io)?;
            let trimmed = bytes.trim_ascii().to_vec();
            if trimmed.is_empty() {
                return Err(SecretError::Empty {
                    name: name.to_string(),
                    path,
                });
            }
            trimmed
        }
        (None, Some(var)) => {
            let value = std::env::var_os(var)
                .map(|v| v.as_encoded_bytes().trim_ascii().to_vec())
                .unwrap_or_default();
            if value.is_empty() {
                return Err(SecretError::MissingEnv {
                    name: name.to_string(),
                    var: var.to_string(),
                });
            }
            value
        }
        (None, None) => {
            return Err(SecretError::NoSource {
                name: name.to_string(),
                hint: "give a file or an environment variable".into(),
            })
        }
    };
    Ok(bytes)
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
        let mode = std::fs::metadata(sdir.join("munge.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
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
        std::fs::set_permissions(
            dir.path().join("x.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let err = load(dir.path(), &["x.key".into()]).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn an_external_secret_comes_from_a_private_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ts.key");
        let err = load_external("tailscale.key", Some(&path), None).unwrap_err();
        assert!(err.to_string().contains("is missing: put it in"), "{err}");
        std::fs::write(&path, "tskey-auth-x\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_external("tailscale.key", Some(&path), None),
            Err(SecretError::TooOpen { .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            load_external("tailscale.key", Some(&path), None).unwrap(),
            b"tskey-auth-x"
        );
        assert!(!is_absent(&SecretError::TooOpen {
            name: "tailscale.key".into(),
            path: path.clone(),
            mode: 0o644
        }));
        assert!(is_absent(
            &load_external("tailscale.key", Some(&dir.path().join("none")), None).unwrap_err()
        ));
        let err = load_external(
            "tailscale.key",
            None,
            Some("CLOSETCTL_TEST_SURELY_UNSET_VAR"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("CLOSETCTL_TEST_SURELY_UNSET_VAR"),
            "{err}"
        );
        assert!(is_absent(&err));
        assert!(is_absent(
            &load_external("tailscale.key", None, None).unwrap_err()
        ));
    }

    #[test]
    fn the_fix_for_an_absent_external_secret_names_its_source() {
        assert_eq!(
            external_fix(Some(Path::new("/root/ts.key")), Some("TS")),
            "put it in `/root/ts.key` (mode 0600)"
        );
        assert_eq!(
            external_fix(None, Some("TS_KEY")),
            "set the environment variable `TS_KEY`"
        );
        assert!(external_fix(None, None).contains("auth_key_file"));
    }
}
