//! Label and field selectors as list and watch requests carry them
//! (`labelSelector=app=web,tier!=db,env in (a,b),!canary`,
//! `fieldSelector=metadata.name=x`), parsed once per request.

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parse failure, reported to the client as 400 BadRequest.
#[derive(Debug, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub(crate) struct InvalidSelector(String);

/// A label selector and a field selector together: an object matches when
/// it matches every requirement of both.
#[derive(Debug, Default, Clone)]
pub(crate) struct Selector {
    labels: Vec<Requirement>,
    /// Field requirements on `metadata.name` / `metadata.namespace`:
    /// (field, value, equal).
    fields: Vec<(String, String, bool)>,
}

impl Selector {
    pub(crate) fn parse(
        labels: Option<&str>,
        fields: Option<&str>,
    ) -> Result<Self, InvalidSelector> {
        let mut selector = Selector::default();
        for part in split_top_level(labels.unwrap_or("")) {
            selector.labels.push(parse_requirement(part)?);
        }
        for part in fields
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, true)
            } else {
                return Err(InvalidSelector(format!("invalid field selector: {part:?}")));
            };
            let field = field.trim();
            if !matches!(field, "metadata.name" | "metadata.namespace") {
                return Err(InvalidSelector(format!(
                    "field label not supported: {field}"
                )));
            }
            selector
                .fields
                .push((field.to_owned(), value.trim().to_owned(), equal));
        }
        Ok(selector)
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        let meta = &object["metadata"];
        let label = |key: &str| meta["labels"][key].as_str();
        let labels_match = self.labels.iter().all(|req| match req {
            Requirement::Equals(k, v) => label(k) == Some(v),
            Requirement::NotEquals(k, v) => label(k) != Some(v),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
        });
        labels_match
            && self.fields.iter().all(|(field, value, equal)| {
                let actual = match field.as_str() {
                    "metadata.name" => meta["name"].as_str(),
                    _ => meta["namespace"].as_str(),
                };
                (actual == Some(value.as_str())) == *equal
            })
    }
}

/// Splits on commas outside parentheses (`a in (x,y),b`).
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_requirement(part: &str) -> Result<Requirement, InvalidSelector> {
    let invalid = || InvalidSelector(part.to_owned());
    let valid_key = |k: &str| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._/".contains(&b))
    };
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        return valid_key(key)
            .then(|| Requirement::NotExists(key.into()))
            .ok_or_else(invalid);
    }
    if let Some((k, v)) = part.split_once("!=") {
        let k = k.trim();
        return valid_key(k)
            .then(|| Requirement::NotEquals(k.into(), v.trim().into()))
            .ok_or_else(invalid);
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        let k = k.trim();
        return valid_key(k)
            .then(|| Requirement::Equals(k.into(), v.trim().into()))
            .ok_or_else(invalid);
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or("").trim();
    let rest = words.next().unwrap_or("").trim();
    if rest.is_empty() {
        return valid_key(key)
            .then(|| Requirement::Exists(key.into()))
            .ok_or_else(invalid);
    }
    let (op, values) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let values = values
        .trim()
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(invalid)?;
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_owned()).collect();
    match op {
        "in" if valid_key(key) => Ok(Requirement::In(key.into(), values)),
        "notin" if valid_key(key) => Ok(Requirement::NotIn(key.into(), values)),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_requirements() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web", "env": "prod"}}});
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=db", false),
            ("env in (prod, dev)", true),
            ("env notin (prod)", false),
            ("env notin (dev)", true),
            ("app", true),
            ("!app", false),
            ("!canary", true),
            ("app=web,env in (dev,prod),!canary", true),
            ("missing notin (x)", true),
        ];
        for (text, expected) in cases {
            let selector = Selector::parse(Some(text), None).unwrap();
            assert_eq!(selector.matches(&obj), expected, "{text}");
        }
        assert!(Selector::parse(Some("env in prod"), None).is_err());
        let by_name = Selector::parse(None, Some("metadata.name=a")).unwrap();
        assert!(by_name.matches(&obj));
        assert!(
            !Selector::parse(None, Some("metadata.name!=a"))
                .unwrap()
                .matches(&obj)
        );
        assert!(Selector::parse(None, Some("spec.x=1")).is_err());
    }
}
