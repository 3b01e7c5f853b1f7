//! Every rule of [`Access::decide`], as a table.

use std::net::SocketAddr;

use super::*;

const DEPLOYER: &str = "deployer-token";
const READER: &str = "reader-token";

fn access(reads: Reads) -> Access {
    let tokens = format!(
        "deployer: {}\nreader: {}\n",
        hashed(DEPLOYER),
        hashed(READER)
    );
    let table = TokenTable::parse(tokens.as_bytes()).unwrap();
    let permissions: BTreeMap<Scope, Grants> = serde_saphyr::from_str(
        "internal: {write: [deployer], read: [reader]}\n\"*\": {write: [ops]}\n",
    )
    .unwrap();
    let certificates = [("spiffe://example.org/ops".to_string(), id("ops"))].into();
    Access {
        mode: Mode::Authenticated(Box::new(Policy {
            tokens: Some(watch::channel(Arc::new(table)).1),
            certificates,
            permissions: Permissions::new(&permissions),
            reads,
        })),
    }
}

fn id(name: &str) -> Identity {
    Identity::new(name).unwrap()
}

fn caller(addr: &str, cert: Option<&[&str]>) -> Caller {
    Caller {
        addr: Some(addr.parse::<SocketAddr>().unwrap()),
        certificate: cert.map(|names| {
            Arc::new(ClientIdentity {
                names: names.iter().map(|n| n.to_string()).collect(),
            })
        }),
    }
}

fn bearer_header(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

/// The outcome as the identity name or the refusal's reason.
fn outcome(result: Result<Option<Identity>, Refusal>) -> String {
    match result {
        Ok(Some(who)) => who.to_string(),
        Ok(None) => "anonymous".into(),
        Err(e) => e.reason().into(),
    }
}

/// Rows: reads, caller, credentials, namespace, need, outcome. Callers:
/// `remote` (10.0.0.7), `local` (127.0.0.1), `ops-cert` and `other-cert`
/// (remote, with a client certificate mapped to `ops` / mapped to no one).
/// Credentials: `-` none, a token by its identity, `guess` (unknown),
/// `basic` (not Bearer), `empty` (`Bearer `), `lowercase` (`bearer
/// <deployer's token>`).
#[test]
fn authenticated_rules() {
    #[rustfmt::skip]
    let cases = [
        // Writes need an identity with write, wherever the caller is.
        ("open", "remote", "-", "internal", "write", "no_credentials"),
        ("open", "local", "-", "internal", "write", "no_credentials"),
        ("open", "remote", "guess", "internal", "write", "invalid_token"),
        ("open", "remote", "basic", "internal", "write", "malformed_credentials"),
        ("open", "remote", "empty", "internal", "write", "malformed_credentials"),
        ("open", "remote", "reader", "internal", "write", "forbidden"),
        ("open", "remote", "deployer", "external", "write", "forbidden"),
        ("open", "remote", "deployer", "internal", "write", "deployer"),
        ("open", "remote", "lowercase", "internal", "write", "deployer"),
        // Client certificates: a mapped name is an identity.
        ("open", "ops-cert", "-", "external", "write", "ops"),
        ("open", "other-cert", "-", "internal", "write", "unknown_certificate"),
        // A token, when sent, is what counts.
        ("open", "ops-cert", "reader", "external", "write", "forbidden"),
        // Open reads: no credentials needed, but bad ones are refused.
        ("open", "remote", "-", "internal", "read", "anonymous"),
        ("open", "remote", "-", "-", "read", "anonymous"),
        ("open", "remote", "guess", "internal", "read", "invalid_token"),
        ("open", "remote", "reader", "internal", "read", "reader"),
        // Restricted reads: read (or write) on the namespace, or on `*`.
        ("restricted", "remote", "-", "internal", "read", "no_credentials"),
        ("restricted", "remote", "reader", "internal", "read", "reader"),
        ("restricted", "remote", "deployer", "internal", "read", "deployer"),
        ("restricted", "remote", "reader", "external", "read", "forbidden"),
        ("restricted", "remote", "reader", "-", "read", "forbidden"),
        ("restricted", "ops-cert", "-", "-", "read", "ops"),
    ];
    for (reads, from, credentials, ns, need, want) in cases {
        let reads = if reads == "open" {
            Reads::Open
        } else {
            Reads::Restricted
        };
        let from = match from {
            "remote" => caller("10.0.0.7:5000", None),
            "local" => caller("127.0.0.1:1", None),
            "ops-cert" => caller(
                "10.0.0.7:5000",
                Some(&["ops.example.org", "spiffe://example.org/ops"]),
            ),
            _ => caller("10.0.0.7:5000", Some(&["intruder.example.org"])),
        };
        let header = match credentials {
            "-" => None,
            "deployer" => Some(bearer_header(DEPLOYER)),
            "reader" => Some(bearer_header(READER)),
            "guess" => Some(bearer_header("guess")),
            "basic" => Some(b"Basic YTpi".to_vec()),
            "empty" => Some(b"Bearer ".to_vec()),
            _ => Some(format!("bearer {DEPLOYER}").into_bytes()),
        };
        let ns = (ns != "-").then_some(ns);
        let need = if need == "read" {
            Permission::Read
        } else {
            Permission::Write
        };
        let got = outcome(access(reads).decide(&from, header.as_deref(), ns, need));
        assert_eq!(got, want, "{reads:?} {need} {ns:?} {credentials}");
    }
}

#[test]
fn without_authentication_writes_need_loopback_or_the_operators_word() {
    let (r, w) = (Permission::Read, Permission::Write);
    let cases = [
        (false, "127.0.0.1:40000", w, "anonymous"),
        (false, "[::1]:40000", w, "anonymous"),
        (false, "[::ffff:127.0.0.1]:40000", w, "anonymous"),
        (false, "10.0.0.7:40000", w, "not_loopback"),
        (false, "10.0.0.7:40000", r, "anonymous"),
        (true, "10.0.0.7:40000", w, "anonymous"),
    ];
    for (remote_writes, addr, need, want) in cases {
        let access = Access::open(remote_writes);
        // A token sent to a namerd without authentication is ignored.
        let auth = Some(&b"Bearer whatever"[..]);
        let got = outcome(access.decide(&caller(addr, None), auth, Some("internal"), need));
        assert_eq!(got, want, "{remote_writes} {addr} {need}");
    }
    // No address known (a router called without connection info): not
    // loopback, so refused.
    let unknown = Caller::default();
    assert_eq!(
        outcome(Access::open(false).decide(&unknown, None, Some("internal"), w)),
        "not_loopback"
    );
}

#[test]
fn refusals_say_what_is_missing() {
    let access = access(Reads::Open);
    let remote = caller("10.0.0.7:5000", None);
    let reader = bearer_header(READER);
    let err = access
        .decide(&remote, Some(&reader), Some("internal"), Permission::Write)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "reader may not write dtab namespace internal"
    );
    assert!(!err.is_unauthenticated());
    let err = access
        .decide(
            &remote,
            Some(&bearer_header("s3cret")),
            Some("internal"),
            Permission::Write,
        )
        .unwrap_err();
    assert!(err.is_unauthenticated());
    assert!(!err.to_string().contains("s3cret"));
    assert_eq!(access.scope(Some("internal")), "internal");
    assert_eq!(access.scope(Some("x")), "*");
}
