//! Checks that keep a binary's configuration reference (a Markdown page in
//! `docs/`) true, for that binary's tests: the page's full example must
//! parse, and every field the parser reads must have a row.

/// The YAML of the page's block introduced by `Example with every field:`.
///
/// # Panics
///
/// When the page has no such block: the test has nothing to check.
pub fn full_example(doc: &str) -> &str {
    doc.split("Example with every field:\n\n```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the reference has a block `Example with every field:`")
}

/// The fields of `fields` without a table row (`| `field` |`) in `doc`.
pub fn undocumented<'a>(doc: &str, fields: &[&'a str]) -> Vec<&'a str> {
    fields
        .iter()
        .copied()
        .filter(|field| !doc.contains(&format!("| `{field}` |")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "| `admin.port` | 9990 | ... |\n\nExample with every field:\n\n```yaml\nadmin: {port: 1}\n```\n";

    #[test]
    fn the_example_and_the_rows_are_found() {
        assert_eq!(full_example(DOC), "admin: {port: 1}\n");
        assert_eq!(undocumented(DOC, &["admin.port", "admin.ip"]), ["admin.ip"]);
    }
}
