//! What namerctl prints: dtabs (pretty, one-line, JSON), namespace lists and
//! history tables. Pure functions from values to text, each output ending
//! with a newline; the pretty dtab format is the Go namerctl's, byte for
//! byte, because operators keep and diff these files.

use crate::api::{Dentry, HistoryEntry, VersionedDtab};

/// `dtab get` (default `--pretty=true`): a `# version <etag>` line when the
/// version is known, then one `<prefix><pad>  => <dst> ;` line per dentry,
/// padded so the arrows line up two spaces after the longest prefix.
pub fn pretty(version: &str, dtab: &[Dentry]) -> String {
    let mut out = String::new();
    if !version.is_empty() {
        out.push_str(&format!("# version {version}\n"));
    }
    let width = dtab
        .iter()
        .map(|d| d.prefix.chars().count())
        .max()
        .unwrap_or(0);
    for d in dtab {
        out.push_str(&format!("{:<width$}  => {} ;\n", d.prefix, d.dst));
    }
    out
}

/// `dtab get --pretty=false`: `pfx=>dst;pfx=>dst;` on one line, no version.
pub fn one_line(dtab: &[Dentry]) -> String {
    let mut out = String::new();
    for d in dtab {
        out.push_str(&format!("{}=>{};", d.prefix, d.dst));
    }
    out.push('\n');
    out
}

/// `dtab get --json`: `{"version":"<etag>","dtab":[...]}`.
pub fn versioned_json(version: &str, dtab: &[Dentry]) -> String {
    let value = VersionedDtab {
        version: Some(version.to_string()),
        dtab: dtab.to_vec(),
    };
    json_line(&value)
}

/// `dtab list`: one name per line.
pub fn names(names: &[String]) -> String {
    names.iter().map(|n| format!("{n}\n")).collect()
}

/// Any JSON value on one line.
pub fn json_line<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut out = serde_json::to_string(value).expect("JSON values serialize");
    out.push('\n');
    out
}

/// `dtab history`: an aligned table, oldest version first; the author is
/// `-` when unknown and the dtab is `-` for a deletion.
pub fn history_table(entries: &[HistoryEntry]) -> String {
    let mut rows = vec![[
        "VERSION".to_string(),
        "OP".to_string(),
        "COMMITTED AT".to_string(),
        "AUTHOR".to_string(),
        "DTAB".to_string(),
    ]];
    for e in entries {
        let dtab = match &e.dtab {
            Some(dtab) => one_line(dtab).trim_end().to_string(),
            None => "-".to_string(),
        };
        rows.push([
            e.version.clone(),
            e.op.clone(),
            e.committed_at.clone(),
            e.author
                .clone()
                .filter(|a| !a.is_empty())
                .unwrap_or("-".into()),
            dtab,
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dtab(rules: &[(&str, &str)]) -> Vec<Dentry> {
        rules.iter().map(|(p, d)| Dentry::new(*p, *d)).collect()
    }

    /// The Linkerd handbook's `internal` dtab.
    fn handbook() -> Vec<Dentry> {
        dtab(&[
            ("/srv", "/#/io.l5d.fs"),
            ("/host", "/srv"),
            ("/tmp", "/srv"),
            ("/svc", "/host"),
            ("/host/world", "/srv/world-v1"),
        ])
    }

    #[test]
    fn pretty_is_byte_for_byte() {
        let cases: &[(&str, Vec<Dentry>, &str)] = &[
            (
                "",
                dtab(&[("/svc", "/host"), ("/host/world", "/srv/world-v1")]),
                "/svc         => /host ;\n/host/world  => /srv/world-v1 ;\n",
            ),
            (
                "AAAAAAAAAAE=",
                handbook(),
                "# version AAAAAAAAAAE=\n\
                 /srv         => /#/io.l5d.fs ;\n\
                 /host        => /srv ;\n\
                 /tmp         => /srv ;\n\
                 /svc         => /host ;\n\
                 /host/world  => /srv/world-v1 ;\n",
            ),
            ("AAAAAAAAAAE=", vec![], "# version AAAAAAAAAAE=\n"),
            ("", vec![], ""),
            (
                "v",
                dtab(&[("/a", "1 * /b & 9 * /c")]),
                "# version v\n/a  => 1 * /b & 9 * /c ;\n",
            ),
        ];
        for (version, dtab, want) in cases {
            assert_eq!(pretty(version, dtab), *want);
        }
    }

    #[test]
    fn one_line_has_no_version_and_no_spaces() {
        let cases: &[(Vec<Dentry>, &str)] = &[
            (
                handbook(),
                "/srv=>/#/io.l5d.fs;/host=>/srv;/tmp=>/srv;/svc=>/host;/host/world=>/srv/world-v1;\n",
            ),
            (vec![], "\n"),
        ];
        for (dtab, want) in cases {
            assert_eq!(one_line(dtab), *want);
        }
    }

    #[test]
    fn json_output() {
        assert_eq!(
            versioned_json("AAAAAAAAAAE=", &dtab(&[("/svc", "/host")])),
            "{\"version\":\"AAAAAAAAAAE=\",\"dtab\":[{\"prefix\":\"/svc\",\"dst\":\"/host\"}]}\n"
        );
        assert_eq!(versioned_json("", &[]), "{\"version\":\"\",\"dtab\":[]}\n");
        let names_in = vec!["default".to_string(), "internal".to_string()];
        assert_eq!(json_line(&names_in), "[\"default\",\"internal\"]\n");
        assert_eq!(names(&names_in), "default\ninternal\n");
        assert_eq!(names(&[]), "");
    }

    #[test]
    fn history_is_a_table() {
        let entries = vec![
            HistoryEntry {
                version: "AAAAAAAAAAE=".into(),
                op: "create".into(),
                committed_at: "2024-05-01T10:00:00Z".into(),
                author: Some("alice".into()),
                dtab: Some(dtab(&[("/svc", "/host")])),
            },
            HistoryEntry {
                version: "AAAAAAAAAAI=".into(),
                op: "delete".into(),
                committed_at: "2024-05-01T10:05:00.123Z".into(),
                author: None,
                dtab: None,
            },
        ];
        let want = "\
VERSION       OP      COMMITTED AT              AUTHOR  DTAB
AAAAAAAAAAE=  create  2024-05-01T10:00:00Z      alice   /svc=>/host;
AAAAAAAAAAI=  delete  2024-05-01T10:05:00.123Z  -       -
";
        assert_eq!(history_table(&entries), want);
    }
}
