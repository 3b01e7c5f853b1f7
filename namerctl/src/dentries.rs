//! Dtabs as lists of dentries in one canonical spelling, each with the
//! line it is on, so that two dtabs compare rule by rule whatever their
//! spacing, comments or weights' notation (`99 * /a` and `99.00*/a` are
//! the same rule). The dtab parser is `l5d-dtab`, the one namerd uses.
//! Pure: no I/O.

use l5d_dtab::{Dtab, NameTree, Prefix};

use crate::api::Dentry;
use crate::input::{CONTENT_TYPE_JSON, DtabInput};

/// A dentry in canonical text, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub dentry: Dentry,
    /// 1-based line of the text it was read from.
    pub line: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid dtab in {source_name}: {message}")]
pub struct DtabError {
    pub source_name: String,
    pub message: String,
}

/// One dentry in the spelling namerd's parser and printer give it.
pub fn canonical(d: &Dentry) -> Result<Dentry, String> {
    let prefix = Prefix::read(&d.prefix).map_err(|e| format!("{}: {e}", d.prefix))?;
    let dst = NameTree::read(&d.dst).map_err(|e| format!("{}: {e}", d.dst))?;
    Ok(Dentry::new(prefix.show(), dst.show()))
}

/// A stored dtab as `namerctl dtab get` prints it: the version line is
/// line 1 when there is a version, so the first dentry is on line 2.
pub fn stored(dtab: &[Dentry], has_version: bool, what: &str) -> Result<Vec<Located>, DtabError> {
    let first = if has_version { 2 } else { 1 };
    dtab.iter()
        .enumerate()
        .map(|(i, d)| {
            Ok(Located {
                dentry: canonical(d).map_err(|message| DtabError {
                    source_name: what.to_string(),
                    message,
                })?,
                line: first + i,
            })
        })
        .collect()
}

/// A dtab file as `input::read` sniffed it: JSON dentries are on the
/// lines of their position, text dentries on the line they start on.
pub fn file(input: &DtabInput, source_name: &str) -> Result<Vec<Located>, DtabError> {
    let error = |message: String| DtabError {
        source_name: source_name.to_string(),
        message,
    };
    let text = String::from_utf8_lossy(&input.body);
    if input.content_type == CONTENT_TYPE_JSON {
        let dtab: Vec<Dentry> = serde_json::from_str(&text).map_err(|e| error(e.to_string()))?;
        return stored(&dtab, false, source_name);
    }
    let dtab = Dtab::read(&text).map_err(|e| error(e.to_string()))?;
    let lines = dentry_lines(&text);
    let lines = if lines.len() == dtab.len() {
        lines
    } else {
        // A spelling the scanner does not follow: positions instead.
        (1..=dtab.len()).collect()
    };
    Ok(dtab
        .dentries()
        .iter()
        .zip(lines)
        .map(|(d, line)| Located {
            dentry: Dentry::new(d.prefix.show(), d.dst.show()),
            line,
        })
        .collect())
}

/// The line each `;`-separated dentry of `text` starts on. A `#` where a
/// token may start (not inside a path such as `/#/io.l5d.fs`) begins a
/// comment to the end of the line, as in the parser.
fn dentry_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let (mut line, mut start, mut in_comment, mut prev) = (1, None, false, ' ');
    for c in text.chars() {
        if in_comment {
            if c == '\n' {
                in_comment = false;
                line += 1;
            }
            prev = c;
            continue;
        }
        match c {
            '\n' => line += 1,
            '#' if !(prev == '/' || is_label_char(prev)) => in_comment = true,
            ';' => {
                lines.extend(start.take());
            }
            c if c.is_whitespace() => {}
            _ => {
                start.get_or_insert(line);
            }
        }
        prev = c;
    }
    lines.extend(start);
    lines
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_:.#$%-\\".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_dentries_keep_their_lines() {
        let text = "# version AAAAAAAAAAE=\n/srv => /#/io.l5d.fs ;\n\n# a comment; with a semicolon\n/host/world\n  => 99 * /srv/a & 1 * /srv/b ;  # trailing\n/svc=>/host;";
        assert_eq!(dentry_lines(text), [2, 5, 7]);
        let input = crate::input::parse(text.to_string(), "f").unwrap();
        let got = file(&input, "f").unwrap();
        let want = [
            ("/srv", "/#/io.l5d.fs", 2),
            ("/host/world", "99.00*/srv/a & /srv/b", 5),
            ("/svc", "/host", 7),
        ];
        let got: Vec<_> = got
            .iter()
            .map(|l| (l.dentry.prefix.as_str(), l.dentry.dst.as_str(), l.line))
            .collect();
        assert_eq!(got, want);
    }
}
