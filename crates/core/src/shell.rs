//! Shell quoting for every value that reaches a remote shell.
//!
//! Values are wrapped in single quotes, with embedded single quotes closed, escaped and
//! reopened (`'\''`), the only form POSIX `sh` never re-interprets.

/// Quote one word for POSIX sh.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\"'\"'");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quote and join words into one command line.
pub fn join<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    words
        .into_iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_a_real_shell() {
        let nasty = [
            "plain",
            "two words",
            "it's",
            "$(rm -rf /)",
            "`x`",
            "a\nb",
            "",
            "\\'\"",
        ];
        let script = format!("for a in {}; do printf '[%s]' \"$a\"; done", join(nasty));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let expected: String = nasty.iter().map(|w| format!("[{w}]")).collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    }

    #[test]
    fn shlex_reads_our_quoting_back() {
        let words = ["it's", "a b", "x"];
        assert_eq!(shlex::split(&join(words)).unwrap(), words);
    }
}
