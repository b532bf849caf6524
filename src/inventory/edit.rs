//! Editing the inventory in place with `toml_edit`, keeping the admin's comments,
//! order and layout. Every edit is validated as a whole inventory before it is written,
//! and written atomically (temp file beside the original, then rename).

use super::{Inventory, InventoryError};
use std::path::Path;
use thiserror::Error;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

#[derive(Debug, Error)]
pub enum EditError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error("inventory `{path}`: {message}")]
    Refused { path: String, message: String },
    #[error("cannot write inventory `{path}`: {source}")]
    Write {
        path: String,
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
    if let Some(u) = current.user(&user.name) {
        return Err(refused(format!(
            "user `{}` already exists (uid {})",
            u.name, u.uid
        )));
    }
    if let Some(u) = current.users.iter().find(|u| u.uid == user.uid) {
        return Err(refused(format!(
            "uid {} is already taken by user `{}`",
            user.uid, u.name
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

/// Write `text` to `path` atomically.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), EditError> {
    let err = |source| EditError::Write {
        path: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    use std::io::Write;
    tmp.write_all(text.as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file()
            .set_permissions(meta.permissions())
            .map_err(err)?;
    }
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}
