//! Runs naming test vectors (`dtab-vectors.json`, or the file named by the
//! environment variable `DTAB_VECTORS`) through `l5d-dtab`.
//!
//! Prints one line per failing vector and ends with `N passed, M failed`.
//! Fails when a vector fails or has a kind this runner does not know.

mod ast;
mod namers;

use std::collections::BTreeSet;
use std::process::ExitCode;

use l5d_dtab::{
    Activity, Binder, DelegateTree, Dentry, Dtab, NameTree, ParseError, Path, Prefix, global,
    request_local_dtab,
};
use serde_json::{Value, json};

use crate::ast::{Result, Style, json_eq, path, str_field};

fn main() -> ExitCode {
    let file = std::env::var("DTAB_VECTORS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dtab-vectors.json").to_string()
    });
    let doc: Value = match std::fs::read_to_string(&file)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(doc) => doc,
        Err(e) => {
            eprintln!("cannot read vectors from {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(vectors) = doc.get("vectors").and_then(Value::as_array) else {
        eprintln!("{file}: no `vectors` list");
        return ExitCode::FAILURE;
    };
    if let Err(why) = ast::check_addr_rule() {
        eprintln!("the runner itself is wrong: {why}");
        return ExitCode::FAILURE;
    }
    println!("running {} vectors from {file}", vectors.len());

    let (mut passed, mut failed) = (0usize, 0usize);
    for v in vectors {
        let id = v.get("id").and_then(Value::as_str).unwrap_or("<no id>");
        match run(v) {
            Ok(()) => passed += 1,
            Err(why) => {
                failed += 1;
                println!("FAIL {id}: {}", why.replace('\n', "\\n"));
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn run(v: &Value) -> Result<()> {
    match str_field(v, "kind")? {
        "parse_path" => parse_kind(v, |s| {
            let p = Path::read(s)?;
            let elems = p
                .labels()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect::<Vec<_>>();
            Ok(json!({"elems": elems, "show": p.show()}))
        }),
        "parse_tree" => parse_kind(v, |s| {
            let t = NameTree::read(s)?;
            Ok(with_show(ast::tree_to(&t, &ast::path_leaf), t.show()))
        }),
        "parse_dentry" => parse_kind(v, |s| {
            let d = Dentry::read(s)?;
            Ok(with_show(dentry_ast(&d), d.show()))
        }),
        "parse_dtab" => parse_kind(v, |s| {
            let d = Dtab::read(s)?;
            let list = d.dentries().iter().map(dentry_ast).collect::<Vec<_>>();
            Ok(json!({"list": list, "len": d.len(), "show": d.show()}))
        }),
        "show" => show(v),
        "simplify" => {
            let t = tree(v, "input")?.simplified();
            let got = with_show(ast::tree_to(&t, &ast::path_leaf), t.show());
            expect_fields(v, &got, &[("expect", "tree"), ("expect_show", "show")])
        }
        "eval" => eval(v),
        "lookup" => {
            let got = ast::tree_to(
                &dtab(v, "dtab")?.lookup(&path(str_field(v, "path")?)?),
                &ast::path_leaf,
            );
            expect(v, "expect", &got)
        }
        "rewrite_chain" => rewrite_chain(v),
        "global_lookup" => {
            let got = global::lookup(&path(str_field(v, "path")?)?);
            activity(v, got.map(|t| ast::tree_to(&t, &ast::name_leaf)))
        }
        "bind" => bind(v),
        "local_dtab" => local_dtab(v),
        "delegate" => delegate(v),
        "delegate_simplify" => {
            let got = ast::delegate_from(field(v, "input")?)?.simplified();
            expect(
                v,
                "expect",
                &ast::delegate_to(&got, &Style::Transcription, &ast::path_value),
            )
        }
        "delegate_find" => {
            let tree = ast::delegate_from(field(v, "input")?)?;
            let target = path(str_field(v, "target")?)?;
            let chain = tree.find(&mut |p: &Path| *p == target).map(|chain| {
                chain
                    .iter()
                    .map(|(p, d)| {
                        json!([p.show(), d.as_deref().map(Dentry::show).unwrap_or_default()])
                    })
                    .collect::<Vec<_>>()
            });
            expect(v, "expect", &json!(chain))
        }
        "dtab_concat" => {
            let got = dtab(v, "left")?.concat(&dtab(v, "right")?);
            expect(v, "expect_show", &json!(got.show()))
        }
        "dtab_strip_prefix" => {
            let got = dtab(v, "dtab")?.strip_prefix(&dtab(v, "prefix")?);
            expect(v, "expect_show", &json!(got.show()))
        }
        other => Err(format!("unknown vector kind {other:?}")),
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value> {
    v.get(key)
        .ok_or_else(|| format!("vector field `{key}` is missing"))
}

fn dtab(v: &Value, key: &str) -> Result<Dtab> {
    let s = str_field(v, key)?;
    Dtab::read(s).map_err(|e| format!("bad dtab in `{key}`: {e}"))
}

fn tree(v: &Value, key: &str) -> Result<NameTree<Path>> {
    let s = str_field(v, key)?;
    NameTree::read(s).map_err(|e| format!("bad tree in `{key}`: {e}"))
}

fn dentry_ast(d: &Dentry) -> Value {
    json!({"prefix": d.prefix.show(), "dst": ast::tree_to(&d.dst, &ast::path_leaf)})
}

fn with_show(tree: Value, show: String) -> Value {
    json!({"tree": tree, "show": show})
}

fn expect(v: &Value, key: &str, got: &Value) -> Result<()> {
    let want = field(v, key)?;
    if json_eq(want, got) {
        Ok(())
    } else {
        Err(format!("expected {want}, got {got}"))
    }
}

/// Checks each `(vector key, result key)` pair whose vector key is present.
fn expect_fields(v: &Value, got: &Value, pairs: &[(&str, &str)]) -> Result<()> {
    let mut checked = false;
    for (want_key, got_key) in pairs {
        if v.get(*want_key).is_some() {
            checked = true;
            expect(v, want_key, &got[*got_key])?;
        }
    }
    if checked {
        Ok(())
    } else {
        Err("vector has no expectation".into())
    }
}

/// The parse kinds: an expected error (exact `error_message` or
/// `error_message_derived`, substring `error_contains`) or an expected value.
fn parse_kind(
    v: &Value,
    parse: impl Fn(&str) -> std::result::Result<Value, ParseError>,
) -> Result<()> {
    let input = str_field(v, "input")?;
    let result = parse(input);
    if v.get("error").and_then(Value::as_bool).unwrap_or(false) {
        return match result {
            Ok(got) => Err(format!("expected a parse error, got {got}")),
            Err(e) => error_matches(v, &e.to_string()),
        };
    }
    let got = result.map_err(|e| format!("expected success, got error: {e}"))?;
    match str_field(v, "kind")? {
        "parse_path" => expect(v, "expect", &got),
        "parse_dtab" => {
            let mut checked = false;
            if v.get("expect").is_some() {
                expect(v, "expect", &got["list"])?;
                checked = true;
            }
            if let Some(len) = v.get("expect_len") {
                checked = true;
                if !json_eq(len, &got["len"]) {
                    return Err(format!("expected {len} dentries, got {}", got["len"]));
                }
            }
            if v.get("expect_show").is_some() {
                checked = true;
                expect(v, "expect_show", &got["show"])?;
            }
            if checked {
                Ok(())
            } else {
                Err("vector has no expectation".into())
            }
        }
        "parse_dentry" => {
            expect(
                v,
                "expect",
                &json!({"prefix": got["tree"]["prefix"], "dst": got["tree"]["dst"]}),
            )?;
            if v.get("expect_show").is_some() {
                expect(v, "expect_show", &got["show"])?;
            }
            Ok(())
        }
        _ => expect_fields(v, &got, &[("expect", "tree"), ("expect_show", "show")]),
    }
}

fn error_matches(v: &Value, message: &str) -> Result<()> {
    for exact in ["error_message", "error_message_derived"] {
        if let Some(want) = v.get(exact).and_then(Value::as_str)
            && want != message
        {
            return Err(format!("expected error {want:?}, got {message:?}"));
        }
    }
    if let Some(want) = v.get("error_contains").and_then(Value::as_str)
        && !message.contains(want)
    {
        return Err(format!(
            "expected an error containing {want:?}, got {message:?}"
        ));
    }
    Ok(())
}

fn show(v: &Value) -> Result<()> {
    let input = field(v, "input")?;
    let text = || input.as_str().ok_or("`input` is not a string");
    let got = match str_field(v, "of")? {
        "tree" => NameTree::read(text()?).map(|t| t.show()),
        "dtab" => Dtab::read(text()?).map(|d| d.show()),
        "dentry" => Dentry::read(text()?).map(|d| d.show()),
        "prefix" => Prefix::read(text()?).map(|p| p.show()),
        "path_elems" => {
            let elems = input
                .as_array()
                .ok_or("`input` is not a list")?
                .iter()
                .map(|e| e.as_str().ok_or("path element is not a string"))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(Path::try_from_labels(elems)
                .map_err(|e| e.to_string())?
                .show())
        }
        other => return Err(format!("unknown `of` {other:?}")),
    }
    .map_err(|e| format!("input does not parse: {e}"))?;
    expect(v, "expect", &json!(got))
}

fn eval(v: &Value) -> Result<()> {
    let t = tree(v, "input")?;
    let shown = |set: Option<BTreeSet<Path>>| {
        json!(set.map(|s| s.iter().map(Path::show).collect::<BTreeSet<_>>()))
    };
    let want = field(v, "expect")?;
    let want = json!(want.as_array().map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect::<BTreeSet<_>>()
    }));
    for (what, got) in [("", t.eval()), ("simplified ", t.simplified().eval())] {
        let got = shown(got);
        if !json_eq(&want, &got) {
            return Err(format!("expected {want}, {what}eval gave {got}"));
        }
    }
    Ok(())
}

/// Follows the highest-precedence matching dentry while its rewrite is a
/// single path.
fn rewrite_chain(v: &Value) -> Result<()> {
    let dtab = dtab(v, "dtab")?;
    let mut p = path(str_field(v, "path")?)?;
    let mut chain = vec![json!(p.show())];
    for _ in 0..l5d_dtab::DEFAULT_MAX_DEPTH {
        match dtab.first_match(&p).and_then(|d| d.rewrite(&p)) {
            Some(NameTree::Leaf(next)) => {
                chain.push(json!(next.show()));
                p = next;
            }
            _ => break,
        }
    }
    expect(v, "expect", &Value::Array(chain))
}

/// Compares an activity with `expect` or, for an expected error, with
/// `error_contains`.
fn activity(v: &Value, got: Activity<Value>) -> Result<()> {
    let wants_error = v.get("error").and_then(Value::as_bool).unwrap_or(false);
    match got {
        Activity::Failed(e) if wants_error => error_matches(v, &e.to_string()),
        Activity::Failed(e) => Err(format!("expected success, got error: {e}")),
        Activity::Pending => Err("expected a result, got pending".into()),
        Activity::Ok(got) if wants_error => Err(format!("expected an error, got {got}")),
        Activity::Ok(got) => expect(v, "expect", &got),
    }
}

fn bind(v: &Value) -> Result<()> {
    let mut dtab = dtab(v, "dtab")?;
    if v.get("local_dtab").is_some() {
        dtab = dtab.concat(&self::dtab(v, "local_dtab")?);
    }
    let namers = namers::namers(v)?;
    let mut binder = Binder::new(&dtab, &namers);
    if let Some(depth) = v.get("max_depth") {
        binder =
            binder.with_max_depth(depth.as_u64().ok_or("`max_depth` is not a number")? as usize);
    }
    let input = match v.get("tree") {
        Some(_) => tree(v, "tree")?,
        None => NameTree::Leaf(path(str_field(v, "path")?)?),
    };
    let got = binder.bind(&input);
    if let (Activity::Ok(t), Some(ids)) = (&got, v.get("expect_eval_ids")) {
        let want = ids
            .as_array()
            .ok_or("`expect_eval_ids` is not a list")?
            .iter()
            .filter_map(Value::as_str)
            .collect::<BTreeSet<_>>();
        let got_ids = t.map(&mut |b| b.id.show()).eval().unwrap_or_default();
        let got_ids = got_ids.iter().map(String::as_str).collect::<BTreeSet<_>>();
        if want != got_ids {
            return Err(format!("expected eval ids {want:?}, got {got_ids:?}"));
        }
        if v.get("expect").is_none() {
            return Ok(());
        }
    }
    activity(v, got.map(|t| ast::tree_to(&t, &ast::bound_leaf)))
}

/// Linkerd's request-local dtab from `l5d-ctx-dtab` and `l5d-dtab` headers
/// (names case-insensitive, each value a string or a list of strings; other
/// headers, `dtab-local` included, are ignored). A bad value is a 400.
fn local_dtab(v: &Value) -> Result<()> {
    let existing = dtab(v, "existing_local")?;
    let headers = field(v, "headers")?
        .as_object()
        .ok_or("`headers` is not an object")?;
    let values = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| match v {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            })
            .collect()
    };
    let result = request_local_dtab(&existing, values("l5d-ctx-dtab"), values("l5d-dtab"));
    match (result, v.get("expect_status")) {
        (Err(_), Some(status)) if status.as_u64() == Some(400) => Ok(()),
        (Err(e), _) => Err(format!("expected success, got error: {e}")),
        (Ok(d), Some(status)) => Err(format!(
            "expected status {status}, got local dtab {}",
            d.show()
        )),
        (Ok(d), None) => expect(v, "expect_local_show", &json!(d.show())),
    }
}

fn delegate(v: &Value) -> Result<()> {
    let dtab = dtab(v, "dtab")?;
    let namers = namers::namers(v)?;
    let got = Binder::new(&dtab, &namers).delegate_path(&path(str_field(v, "path")?)?);
    let tree: DelegateTree<_> = match got {
        Activity::Ok(t) => t,
        Activity::Failed(e) => return Err(format!("delegation failed: {e}")),
        Activity::Pending => return Err("delegation is pending".into()),
    };
    let style = Style::Api {
        addr: &namers::inet_addr,
    };
    let mut got = ast::delegate_to(&tree, &style, &ast::bound_value);
    let mut want = field(v, "expect")?.clone();
    ast::strip_uncompared_addrs(&mut want, &mut got);
    if json_eq(&want, &got) {
        Ok(())
    } else {
        Err(format!("expected {want}, got {got}"))
    }
}
