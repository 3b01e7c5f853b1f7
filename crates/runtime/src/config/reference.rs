//! A check that keeps a binary's configuration reference (a Markdown page
//! in `docs/`) true, for that binary's tests: the page's full example must
//! parse, and every field the parser reads must have a row.

use super::{AdminConfig, ConfigError};

/// Checks the reference `doc`: the YAML block after `Example with every
/// field:` is accepted by `parse`, and every field of `fields` and of the
/// admin block has a table row (`| `field` |`).
///
/// # Panics
///
/// When the page fails either check: that is the test failing.
pub fn check(doc: &str, parse: impl FnOnce(&str) -> Result<(), ConfigError>, fields: &[&str]) {
    if let Err(e) = parse(full_example(doc)) {
        panic!("the documented example does not parse: {e}");
    }
    let undocumented = undocumented(doc, AdminConfig::FIELDS.iter().chain(fields));
    assert!(
        undocumented.is_empty(),
        "the reference has no row for {undocumented:?}"
    );
}

fn full_example(doc: &str) -> &str {
    doc.split("Example with every field:\n\n```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the reference has a block `Example with every field:`")
}

fn undocumented<'a>(doc: &str, fields: impl Iterator<Item = &'a &'a str>) -> Vec<&'a str> {
    fields
        .copied()
        .filter(|field| !doc.contains(&format!("| `{field}` |")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "| `admin.ip` | ... |\n| `admin.port` | 9990 | ... |\n| `routers` | |\n\n\
                       Example with every field:\n\n```yaml\nadmin: {port: 1}\n```\n";

    #[test]
    fn the_example_and_the_rows_are_found() {
        assert_eq!(full_example(DOC), "admin: {port: 1}\n");
        let fields = ["routers", "usage"];
        assert_eq!(undocumented(DOC, fields.iter()), ["usage"]);
        check(
            DOC,
            |text| {
                (text == "admin: {port: 1}\n")
                    .then_some(())
                    .ok_or_else(|| ConfigError::new("x", "y"))
            },
            &["routers"],
        );
    }

    #[test]
    #[should_panic(expected = "no row for [\"usage\"]")]
    fn a_missing_row_fails() {
        check(DOC, |_| Ok(()), &["usage"]);
    }
}
