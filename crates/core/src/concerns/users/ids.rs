//! The one rule for an inventory ID on a live host, used by `plan` (conflicts that make
//! apply refuse a host), `check uids` (a row per account) and `adduser` (a new person's
//! name and UID must be free everywhere).
//!
//! A name with the inventory's ID is the same account; a name with another ID, or the
//! ID held by another name, is a conflict closetctl never resolves by renumbering (files
//! on NFS carry numeric IDs); neither present means the account is still to be made.

/// What a host has for one inventory name and ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdState {
    /// The name exists with this ID.
    Same,
    /// Neither the name nor the ID exists.
    Missing,
    /// The name exists with another ID.
    OtherId(u32),
    /// The name does not exist and another name holds the ID.
    HeldBy(String),
}

/// How `name` with `id` stands among the live `(name, id)` entries of a host.
pub fn id_state<'a>(
    name: &str,
    id: u32,
    live: impl IntoIterator<Item = (&'a str, u32)> + Clone,
) -> IdState {
    match live.clone().into_iter().find(|(n, _)| *n == name) {
        Some((_, have)) if have == id => IdState::Same,
        Some((_, have)) => IdState::OtherId(have),
        None => match live.into_iter().find(|(_, have)| *have == id) {
            Some((holder, _)) => IdState::HeldBy(holder.to_string()),
            None => IdState::Missing,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_other_held_or_missing() {
        let live = [("alice", 1001), ("carol", 1003)];
        assert_eq!(id_state("alice", 1001, live), IdState::Same);
        assert_eq!(id_state("alice", 1500, live), IdState::OtherId(1001));
        assert_eq!(id_state("bob", 1003, live), IdState::HeldBy("carol".into()));
        assert_eq!(id_state("bob", 1002, live), IdState::Missing);
        // The name wins over the ID: alice with carol's UID is alice renumbered.
        assert_eq!(id_state("alice", 1003, live), IdState::OtherId(1001));
    }
}
