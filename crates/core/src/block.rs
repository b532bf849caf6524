//! A block of lines closetctl owns inside a file it shares with the admin (`/etc/fstab`
//! on NFS clients, `/etc/hosts` on the login host): between a `# BEGIN closetctl` line
//! and a `# END closetctl` line. Every byte outside the block stays exactly as it was,
//! in its place; a file closetctl cannot read whole, or whose block has no end, is not
//! edited at all (a host conflict: apply refuses the host until an admin looks).

use crate::diagnostic::{Code, Diagnostic};
use crate::facts::{FileKind, HostFacts};

/// How a block's first line starts, whatever its wording.
pub const BEGIN_MARKER: &str = "# BEGIN closetctl";
/// A block's last line.
pub const END: &str = "# END closetctl";

/// `current` with the managed block replaced in place (or appended when absent). Every
/// byte outside the block is kept exactly, in order: other lines, comments, `\r`,
/// bytes that are not UTF-8. Only a missing final newline before an appended block is
/// added.
pub fn replace(current: &[u8], block: &[String]) -> Vec<u8> {
    let mut lines: Vec<&[u8]> = current.split_inclusive(|b| *b == b'\n').collect();
    let starts = |l: &[u8], marker: &str| l.starts_with(marker.as_bytes());
    let begin = lines.iter().position(|l| starts(l, BEGIN_MARKER));
    let end = begin.and_then(|b| {
        lines[b..]
            .iter()
            .position(|l| starts(l, END))
            .map(|e| b + e)
    });
    let mut text = String::new();
    for line in block {
        text.push_str(line);
        text.push('\n');
    }
    let mut out = Vec::with_capacity(current.len() + text.len());
    match (begin, end) {
        (Some(b), Some(e)) => {
            let after = lines.split_off(e + 1);
            lines.truncate(b);
            out.extend(lines.concat());
            out.extend(text.as_bytes());
            out.extend(after.concat());
        }
        _ => {
            out.extend(current);
            if !out.is_empty() && !out.ends_with(b"\n") {
                out.push(b'\n');
            }
            out.extend(text.as_bytes());
        }
    }
    out
}

/// Whether `bytes` has a block of closetctl's (a `# BEGIN closetctl` line).
pub fn has_block(bytes: &[u8]) -> bool {
    bytes
        .split(|b| *b == b'\n')
        .any(|l| l.starts_with(BEGIN_MARKER.as_bytes()))
}

/// A `# BEGIN closetctl` line with no `# END closetctl` after it: replacing "the block"
/// would take every line up to some later END with it.
pub fn has_unclosed(bytes: &[u8]) -> bool {
    let mut open = false;
    for line in bytes.split(|b| *b == b'\n') {
        if line.starts_with(BEGIN_MARKER.as_bytes()) {
            open = true;
        } else if line.starts_with(END.as_bytes()) {
            open = false;
        }
    }
    open
}

/// What the host has now in a shared file, for [`replace`]: `Some(empty)` when the
/// file is absent or no facts were gathered yet (the probe request is being built),
/// `None` when the probe could not read it whole (see [`conflicts`]).
pub fn current(facts: Option<&HostFacts>, path: &str) -> Option<Vec<u8>> {
    match facts.map(|f| f.files.get(path)) {
        Some(Some(f)) => f.bytes.clone(),
        _ => Some(Vec::new()),
    }
}

/// The codes a shared file's conflicts are reported with.
pub struct Codes {
    pub not_file: Code,
    pub too_large: Code,
    pub unclosed: Code,
}

/// Why closetctl will not edit the shared file `path` on this host: not a regular file,
/// larger than the probe reads back whole, or a block with no end. Rewriting it from a
/// guess would drop the admin's lines. `by_hand` ends the too-large message ("add the
/// NFS lines by hand").
pub fn conflicts(path: &str, facts: &HostFacts, codes: &Codes, by_hand: &str) -> Vec<Diagnostic> {
    match facts.files.get(path) {
        Some(f) if f.kind != FileKind::File => vec![Diagnostic::error(
            codes.not_file,
            path,
            format!(
                "`{path}` is a {}, not a regular file: closetctl edits only a file it can read whole",
                format!("{:?}", f.kind).to_lowercase()
            ),
        )],
        Some(f) if f.bytes.is_none() => vec![Diagnostic::error(
            codes.too_large,
            path,
            format!(
                "`{path}` is {} bytes, over the {} closetctl reads back whole: it will not rewrite a file it could not read (trim it, or {by_hand})",
                f.size,
                crate::facts::probe::CONTENT_LIMIT
            ),
        )],
        Some(f) if f.bytes.as_deref().is_some_and(has_unclosed) => vec![Diagnostic::error(
            codes.unclosed,
            path,
            format!(
                "`{path}` has a `{BEGIN_MARKER}` line with no `{END}` after it: closetctl will not guess where its block ends (add the END line or remove the BEGIN line)"
            ),
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(line: &str) -> Vec<String> {
        vec![
            format!("{BEGIN_MARKER}: test."),
            line.to_string(),
            END.to_string(),
        ]
    }

    #[test]
    fn the_block_replaces_itself_and_nothing_else() {
        let home = block("s:/home /home nfs o 0 0");
        let fstab = b"# /etc/fstab: static file system information.\nUUID=abc / ext4 errors=remount-ro 0 1\n\n# swap\n/swapfile none swap sw 0 0\n";
        let once = replace(fstab, &home);
        assert!(once.starts_with(fstab), "foreign lines kept in place");
        assert_eq!(replace(&once, &home), once, "idempotent");
        let mut moved = once.clone();
        moved.extend(b"# after\n");
        let changed = replace(&moved, &block("s:/data /data nfs o 0 0"));
        assert!(changed.starts_with(fstab));
        assert!(changed.ends_with(b"s:/data /data nfs o 0 0\n# END closetctl\n# after\n"));
    }

    #[test]
    fn a_begin_without_an_end_is_noticed() {
        assert!(has_unclosed(b"a\n# BEGIN closetctl: x\nb\n"));
        assert!(!has_unclosed(
            b"a\n# BEGIN closetctl: x\nb\n# END closetctl\n"
        ));
        assert!(!has_unclosed(b"a\nb\n"));
        assert!(has_block(b"a\n# BEGIN closetctl: x\n"));
        assert!(!has_block(b"a\n#BEGIN closetctl\n"));
    }

    #[test]
    fn bytes_that_are_not_utf8_and_carriage_returns_are_kept_exactly() {
        // A Latin-1 comment (0xE9), CRLF line ends, no final newline.
        let fstab: &[u8] =
            b"# caf\xe9 machine\r\nUUID=abc / ext4 defaults 0 1\r\n/swap.img none swap sw 0 0";
        let once = replace(fstab, &block("s:/home /home nfs o 0 0"));
        assert!(once.starts_with(fstab));
        assert_eq!(
            once[fstab.len()],
            b'\n',
            "the missing final newline, then the block"
        );
        assert_eq!(replace(&once, &block("s:/home /home nfs o 0 0")), once);
        let changed = replace(&once, &block("s:/data /data nfs o 0 0"));
        assert!(changed.starts_with(fstab));
    }
}
