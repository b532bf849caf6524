//! MUNGE on the fake host, as MUNGE 0.5 behaves: `munge -n` makes a credential under
//! the key munged read when it last started (it reads the key only at start), and
//! `unmunge` decodes one only when it was made under the same key, within the TTL by
//! the decoding host's clock, and not decoded there before. Errors are the tools' own
//! lines and exit codes (`EMUNGE_SOCKET` 6, `EMUNGE_CRED_INVALID` 14, `..._EXPIRED` 15,
//! `..._REWOUND` 16, `..._REPLAYED` 17).
//!
//! Verification's decode script ([`closetctl_core::concerns::munge::verify::DECODE`] and its
//! `cc_unmunge MAKER CREDENTIAL` calls) is carried out line by line with that `unmunge`.

use super::state::{FakeState, MUNGE_KEY, MUNGE_UNIT};
use base64::Engine as _;
use closetctl_core::check::clock::MUNGE_TTL_SECONDS;
use closetctl_exec::transport::RemoteOutput;
use sha2::Digest as _;
use std::fmt::Write as _;

/// What `munge` and `unmunge` say when munged does not run.
const NO_SOCKET: &str = "Failed to access \"/run/munge/munge.socket.2\": No such file or directory (Did you start munged?)";

/// The key munged works with: the one it read at start (or the file, if it never
/// started in this fake's history); `None` when munged does not run.
pub(crate) fn munged_key(s: &FakeState) -> Option<Vec<u8>> {
    if !s.active(MUNGE_UNIT) {
        return None;
    }
    s.munged_key
        .clone()
        .or_else(|| s.files.get(MUNGE_KEY).map(|f| f.content.clone()))
}

/// A short tag of a key: two credentials decode with each other's key iff tags agree.
fn tag(key: &[u8]) -> String {
    let d = sha2::Sha256::digest(key);
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// `munge -n`: one credential line, or munge's error.
pub(crate) fn munge_n(s: &mut FakeState) -> RemoteOutput {
    let Some(key) = munged_key(s) else {
        return RemoteOutput {
            status: 6,
            stdout: String::new(),
            stderr: format!("munge: Error: {NO_SOCKET}\n"),
        };
    };
    s.credentials_made += 1;
    let payload = format!(
        "{}:{}:{}:{}",
        tag(&key),
        s.epoch as i64,
        s.hostname,
        s.credentials_made
    );
    RemoteOutput {
        status: 0,
        stdout: format!(
            "MUNGE:{}:\n",
            base64::engine::general_purpose::STANDARD.encode(payload)
        ),
        stderr: String::new(),
    }
}

/// `unmunge` of one credential: `Err((exit code, its stderr line))` on failure.
pub(crate) fn unmunge(s: &mut FakeState, credential: &str) -> Result<(), (i32, String)> {
    let Some(key) = munged_key(s) else {
        return Err((6, format!("unmunge: Error: {NO_SOCKET}")));
    };
    let error = |code: i32, what: &str| Err((code, format!("unmunge: Error: {what}")));
    let payload = credential
        .trim()
        .strip_prefix("MUNGE:")
        .and_then(|c| c.strip_suffix(':'))
        .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
        .map(|p| String::from_utf8_lossy(&p).into_owned());
    let Some(payload) = payload else {
        return error(8, "Invalid credential format");
    };
    let mut fields = payload.splitn(4, ':');
    let (made_under, made_at) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
    // A credential made under another key fails its MAC: munged says only "invalid".
    if made_under != tag(&key) {
        return error(14, "Invalid credential");
    }
    let made_at: f64 = made_at.parse().unwrap_or(0.0);
    if s.epoch > made_at + MUNGE_TTL_SECONDS {
        return error(15, "Expired credential");
    }
    if made_at > s.epoch + MUNGE_TTL_SECONDS {
        return error(16, "Rewound credential");
    }
    if !s.decoded.insert(credential.trim().to_string()) {
        return error(17, "Replayed credential");
    }
    Ok(())
}

/// Verification's decode script: [`closetctl_core::concerns::munge::verify::DECODE`] then one
/// `cc_unmunge MAKER CREDENTIAL` line per credential, each answered as the function
/// answers: `@@ok MAKER` or `@@fail MAKER <unmunge's first error line>`.
pub(crate) fn decode_script(s: &mut FakeState, script: &str) -> RemoteOutput {
    let mut out = RemoteOutput::default();
    let calls = &script[closetctl_core::concerns::munge::verify::DECODE.len()..];
    for line in calls.lines().filter(|l| !l.trim().is_empty()) {
        let words = shlex::split(line).unwrap_or_default();
        match words.as_slice() {
            [f, maker, credential] if f == "cc_unmunge" => match unmunge(s, credential) {
                Ok(()) => {
                    let _ = writeln!(out.stdout, "@@ok {maker}");
                }
                Err((_, why)) => {
                    let _ = writeln!(out.stdout, "@@fail {maker} {why}");
                }
            },
            _ => {
                out.status = 127;
                out.stderr = format!("fake host: unknown line in the decode script: {line}");
                return out;
            }
        }
    }
    out
}
