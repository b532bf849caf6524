//! Editing the inventory in place with `toml_edit`, keeping the admin's comments,
//! order and layout. Every edit is validated as a whole inventory before it is written.
//!
//! [`update_file`] writes an edit safely: a symlinked inventory is written at the link's
//! target (the link stays a link); a lock file beside the target (`.NAME.lock`, flock(2))
//! serializes closetctl's own edits; the file is re-read under the lock and the edit
//! applied to what is there now, so an edit made meanwhile is kept; the new text goes to
//! a temp file in the target's directory (random name, 0600 from creation) that gets the
//! target's owner and mode, is fsynced, renamed over the target, and the directory is
//! fsynced. The lock file stays: removing it would let two editors lock different files.

use super::{Inventory, InventoryError};
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

#[derive(Debug, Error)]
pub enum EditError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error("inventory `{path}`: {message}")]
    Refused { path: String, message: String },
    #[error("cannot write inventory `{path}`: {what}: {source}")]
    Write {
        path: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// A user to add.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub name: String,
    pub uid: u32,
    pub gid: Option<u32>,
    pub groups: Vec<String>,
    pub ssh_keys: Vec<String>,
}

/// The inventory text with `user` appended after the last `[[user]]`; the result is
/// validated, so a name or UID already taken, or an unknown group, is refused.
pub fn add_user(path: &Path, source: &str, user: &NewUser) -> Result<String, EditError> {
    let refused = |message: String| EditError::Refused {
        path: path.display().to_string(),
        message,
    };
    let current = Inventory::parse(path, source)?;
    // A disabled user's name and UID stay hers: her files on the shared /home are
    // owned by that UID, and a new account with it would own them.
    let disabled = |u: &super::User| {
        if u.disabled {
            " (disabled: a disabled user's name and uid stay reserved, her files still carry them)"
        } else {
            ""
        }
    };
    if let Some(u) = current.user(&user.name) {
        return Err(refused(format!(
            "user `{}` already exists (uid {}){}",
            u.name,
            u.uid,
            disabled(u)
        )));
    }
    if let Some(u) = current.users.iter().find(|u| u.uid == user.uid) {
        let who = if u.disabled { "disabled user" } else { "user" };
        return Err(refused(format!(
            "uid {} is already taken by {who} `{}`{}",
            user.uid,
            u.name,
            disabled(u)
        )));
    }
    let mut doc: DocumentMut = source
        .parse()
        .map_err(|e: toml_edit::TomlError| refused(e.to_string()))?;
    let mut table = Table::new();
    table.insert("name", value(&user.name));
    table.insert("uid", value(i64::from(user.uid)));
    if let Some(gid) = user.gid {
        table.insert("gid", value(i64::from(gid)));
    }
    if !user.groups.is_empty() {
        table.insert("groups", value(user.groups.iter().collect::<Array>()));
    }
    if !user.ssh_keys.is_empty() {
        table.insert("ssh_keys", value(user.ssh_keys.iter().collect::<Array>()));
    }
    let users = doc
        .entry("user")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
    let Some(users) = users.as_array_of_tables_mut() else {
        return Err(refused(
            "`user` is not an array of tables (`[[user]]`)".into(),
        ));
    };
    // Place the new table right after the last [[user]] so the file's order is kept.
    let last = users.iter().filter_map(|t| t.position()).max();
    if let Some(pos) = last {
        table.set_position(pos);
    }
    users.push(table);
    let mut text = doc.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    // The edited text is not on disk yet, so its line numbers would point nowhere:
    // name the problems without them.
    match Inventory::parse(path, &text) {
        Ok(_) => Ok(text),
        Err(InventoryError::Invalid { problems, .. }) => {
            let problems: Vec<String> = problems.into_iter().map(|p| p.message).collect();
            Err(refused(format!(
                "cannot add user `{}`: {}",
                user.name,
                problems.join("; ")
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// The inventory text with user `name` marked `disabled = true` (and
/// `disabled_reason`, when given), in place: the entry is never removed, so her name
/// and UID stay reserved. Refused for an unknown user or one already disabled.
pub fn disable_user(
    path: &Path,
    source: &str,
    name: &str,
    reason: Option<&str>,
) -> Result<String, EditError> {
    let refused = |message: String| EditError::Refused {
        path: path.display().to_string(),
        message,
    };
    let current = Inventory::parse(path, source)?;
    match current.user(name) {
        None => return Err(refused(format!("there is no user `{name}` to disable"))),
        Some(u) if u.disabled => {
            return Err(refused(format!(
                "user `{name}` is already disabled{}",
                u.disabled_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )))
        }
        Some(_) => {}
    }
    let mut doc: DocumentMut = source
        .parse()
        .map_err(|e: toml_edit::TomlError| refused(e.to_string()))?;
    let table = doc
        .get_mut("user")
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|users| {
            users
                .iter_mut()
                .find(|t| t.get("name").and_then(Item::as_str) == Some(name))
        })
        .ok_or_else(|| refused(format!("user `{name}` is not a `[[user]]` table")))?;
    table.insert("disabled", value(true));
    match reason {
        Some(r) => {
            table.insert("disabled_reason", value(r));
        }
        None => {
            table.remove("disabled_reason");
        }
    }
    let text = doc.to_string();
    match Inventory::parse(path, &text) {
        Ok(_) => Ok(text),
        Err(InventoryError::Invalid { problems, .. }) => {
            let problems: Vec<String> = problems.into_iter().map(|p| p.message).collect();
            Err(refused(format!(
                "cannot disable user `{name}`: {}",
                problems.join("; ")
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// The lock file of the inventory file `target`: `.NAME.lock` in the same directory.
pub fn lock_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map_or("inventory".into(), |n| n.to_string_lossy().into_owned());
    parent_dir(target).join(format!(".{name}.lock"))
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// An exclusive flock(2) on an inventory's lock file, released when dropped (and by the
/// kernel if the process dies: an interrupted edit strands no lock).
#[derive(Debug)]
pub struct InventoryLock {
    _file: File,
}

/// Take the lock of the inventory file `target`, waiting for another holder;
/// `on_wait` is called once, with the lock file, before waiting.
pub fn lock(target: &Path, on_wait: impl FnOnce(&Path)) -> Result<InventoryLock, EditError> {
    let lock = lock_path(target);
    let err = |what: &str, source| EditError::Write {
        path: target.display().to_string(),
        what: format!("{what} `{}`", lock.display()),
        source,
    };
    // Never through a link; read-only is enough to flock a file another admin created.
    let open = |write: bool| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .create(write)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock)
    };
    let file = match open(true) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => open(false),
        other => other,
    }
    .map_err(|e| err("cannot open the lock file", e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            on_wait(&lock);
            file.lock().map_err(|e| err("cannot lock", e))?;
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(err("cannot lock", e)),
    }
    Ok(InventoryLock { _file: file })
}

/// Apply `edit` to the inventory at `path` and write the result, safely (see the module
/// header): links resolved to the target, under the lock, from the file as it is then,
/// atomically, keeping the target's owner and mode. `on_wait` is told when another
/// editor holds the lock. Returns the text written.
pub fn update_file(
    path: &Path,
    edit: impl Fn(&str) -> Result<String, EditError>,
    on_wait: impl FnOnce(&Path),
) -> Result<String, EditError> {
    let shown = path.display().to_string();
    let err = |what: &str, source| EditError::Write {
        path: shown.clone(),
        what: what.to_string(),
        source,
    };
    // The file the link (or chain of links) names; the link itself is left alone.
    let target = std::fs::canonicalize(path).map_err(|e| err("cannot resolve the path", e))?;
    let _lock = lock(&target, on_wait)?;
    // An editor that does not take the lock (vi) may still write meanwhile: if the file
    // changed between reading it and renaming over it, start again from the new text.
    for _ in 0..5 {
        let before = std::fs::read(&target).map_err(|e| err("cannot read it", e))?;
        let current = String::from_utf8(before.clone())
            .map_err(|e| err("it is not UTF-8", std::io::Error::other(e)))?;
        let text = edit(&current)?;
        let tmp = temp_copy(&target, &text).map_err(|(what, e)| err(&what, e))?;
        if std::fs::read(&target).map_err(|e| err("cannot read it", e))? != before {
            continue;
        }
        tmp.persist(&target)
            .map_err(|e| err("cannot rename the new text over it", e.error))?;
        File::open(parent_dir(&target))
            .and_then(|d| d.sync_all())
            .map_err(|e| err("cannot sync its directory", e))?;
        return Ok(text);
    }
    Err(EditError::Refused {
        path: shown,
        message: "it keeps changing while closetctl writes it; nothing was written".into(),
    })
}

/// `text` in a new temp file beside `target`, with the target's owner and mode, synced.
/// The temp file is removed again if anything fails.
fn temp_copy(
    target: &Path,
    text: &str,
) -> Result<tempfile::NamedTempFile, (String, std::io::Error)> {
    let meta = std::fs::symlink_metadata(target)
        .map_err(|e| ("cannot read its owner and mode".to_string(), e))?;
    if !meta.file_type().is_file() {
        return Err((
            "it is not a regular file".into(),
            std::io::Error::from(std::io::ErrorKind::InvalidInput),
        ));
    }
    let name = target
        .file_name()
        .map_or("inventory".into(), |n| n.to_string_lossy().into_owned());
    // O_EXCL with a random name, mode 0600 until it gets the target's.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(parent_dir(target))
        .map_err(|e| ("cannot create a temp file beside it".to_string(), e))?;
    tmp.write_all(text.as_bytes())
        .map_err(|e| ("cannot write the temp file".to_string(), e))?;
    let file = tmp.as_file();
    let own = file
        .metadata()
        .map_err(|e| ("cannot read the temp file".to_string(), e))?;
    if (own.uid(), own.gid()) != (meta.uid(), meta.gid()) {
        std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid())).map_err(|e| {
            (
                format!(
                    "cannot keep its owner {}:{} (run adduser as that user or as root)",
                    meta.uid(),
                    meta.gid()
                ),
                e,
            )
        })?;
    }
    // After fchown, which clears set-id bits.
    file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| ("cannot keep its mode".to_string(), e))?;
    file.sync_all()
        .map_err(|e| ("cannot sync the temp file".to_string(), e))?;
    Ok(tmp)
}
