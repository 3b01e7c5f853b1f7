//! A configuration file as a whole: where its text comes from, and its top
//! level, a mapping of known sections.

use std::io::Read as _;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ConfigError, typed};

/// The field an error about the file as a whole names.
const DOCUMENT: &str = "(document)";

/// The configuration file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Stdin(std::io::Error),
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

/// The text of the configuration at `path`, or of standard input for `-`.
pub fn read_source(path: &str) -> Result<String, SourceError> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(SourceError::Stdin)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|source| SourceError::File {
        path: path.to_string(),
        source,
    })
}

/// A YAML or JSON document (JSON is YAML).
pub fn yaml(text: &str) -> Result<Value, ConfigError> {
    serde_saphyr::from_str(text).map_err(|e| ConfigError::new(DOCUMENT, e))
}

/// The top level of `doc` as `T`, a struct of sections that refuses
/// unknown ones; `expected` says what a document that is not a mapping
/// should have been (`expected a mapping with `routers``).
pub fn sections<T: DeserializeOwned>(doc: Value, expected: &str) -> Result<T, ConfigError> {
    if !doc.is_object() {
        return Err(ConfigError::new(DOCUMENT, expected));
    }
    typed(doc, "")
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::config::present;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sections {
        #[serde(default, deserialize_with = "present")]
        routers: Option<Value>,
    }

    fn parse(text: &str) -> Result<Sections, ConfigError> {
        sections(yaml(text)?, "expected a mapping with `routers`")
    }

    #[test]
    fn the_top_level_is_a_mapping_of_known_sections() {
        assert_eq!(
            parse("routers: []").unwrap().routers,
            Some(Value::Array(vec![]))
        );
        assert_eq!(parse("routers: null").unwrap().routers, Some(Value::Null));
        assert_eq!(parse("{}").unwrap().routers, None);
        let err = parse("router: []").unwrap_err();
        assert_eq!(err.field, "router");
        assert!(err.message.starts_with("unknown field `router`"), "{err}");
        assert_eq!(
            parse("- a").unwrap_err().to_string(),
            "(document): expected a mapping with `routers`"
        );
        assert_eq!(parse(": : :").unwrap_err().field, "(document)");
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = read_source("/nonexistent/l5d.yaml").unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/l5d.yaml: "),
            "{err}"
        );
    }
}
