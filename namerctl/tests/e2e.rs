//! The real `namerctl` binary against a real namerd HTTP controller started
//! in-process on 127.0.0.1:0, on each store backend (in-memory, SQLite,
//! PostgreSQL): the operator's get -> edit -> update loop with
//! compare-and-set, history and rollback, and 50 concurrent updates from the
//! same version.

use std::path::Path;

#[path = "support/run.rs"]
mod run;

use run::{namerctl, stderr, stdout};

/// The Linkerd handbook's `internal` dtab.
const HANDBOOK: &str = "/srv => /#/io.l5d.fs; /host => /srv; /tmp => /srv; /svc => /host; /host/world => /srv/world-v1;\n";

/// What `dtab get internal` prints for [`HANDBOOK`] after the version line.
const HANDBOOK_PRETTY: &str = "\
/srv         => /#/io.l5d.fs ;
/host        => /srv ;
/tmp         => /srv ;
/svc         => /host ;
/host/world  => /srv/world-v1 ;
";

/// Runs namerctl and requires exit 0.
async fn ok(base_url: &str, dir: &Path, args: &[&str]) -> String {
    let out = namerctl(base_url, dir, args).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "namerctl {args:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

/// Runs `scenario` against namerd on each backend.
macro_rules! on_every_backend {
    ($scenario:ident: $memory:ident, $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $memory() {
            $scenario(namerd::testing::start_in_memory().await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let dir = tempfile::tempdir().unwrap();
            $scenario(namerd::testing::start_sqlite(dir.path()).await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(schema) = namerd::testing::PgSchema::create(stringify!($postgres)).await
            else {
                return;
            };
            $scenario(namerd::testing::start(schema.storage()).await).await;
            schema.drop_schema().await;
        }
    };
}

on_every_backend!(operator_workflow: workflow_in_memory, workflow_on_sqlite, workflow_on_postgres);
on_every_backend!(
    fifty_concurrent_updates_from_one_version: fifty_writers_in_memory,
    fifty_writers_on_sqlite,
    fifty_writers_on_postgres
);

async fn operator_workflow(namerd: namerd::testing::TestNamerd) {
    let url = namerd.base_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = |name: &str| d.join(name).to_str().unwrap().to_string();

    // create, then get byte for byte.
    std::fs::write(d.join("internal.dtab"), HANDBOOK).unwrap();
    let out = ok(
        &url,
        d,
        &["dtab", "create", "internal", &path("internal.dtab")],
    )
    .await;
    assert_eq!(out, "Created internal\n");
    assert_eq!(ok(&url, d, &["dtab", "list"]).await, "internal\n");
    let got = ok(&url, d, &["dtab", "get", "internal"]).await;
    assert_eq!(got, format!("# version AAAAAAAAAAE=\n{HANDBOOK_PRETTY}"));

    // Edit the got file (a canary shift), keep the version line, update.
    let edited = got.replace(
        "/host/world  => /srv/world-v1 ;",
        "/host/world  => 9*/srv/world-v1 & 1*/srv/world-v2 ;",
    );
    assert_ne!(edited, got);
    std::fs::write(d.join("edited.dtab"), &edited).unwrap();
    let out = ok(
        &url,
        d,
        &["dtab", "update", "internal", &path("edited.dtab")],
    )
    .await;
    assert_eq!(out, "Updated internal\n");
    let got = ok(&url, d, &["dtab", "get", "internal"]).await;
    assert!(got.starts_with("# version AAAAAAAAAAI=\n"), "{got}");
    assert!(got.contains("/srv/world-v2"), "{got}");

    // The same file again is stale: refused with the conflict exit code.
    let out = namerctl(
        &url,
        d,
        &["dtab", "update", "internal", &path("edited.dtab")],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "Error: version conflict: dtab internal has changed since version AAAAAAAAAAE=; \
         the current version is AAAAAAAAAAI=\n"
    );

    // No version anywhere: refused, nothing written; --force writes.
    std::fs::write(d.join("unversioned.dtab"), HANDBOOK).unwrap();
    let unversioned = path("unversioned.dtab");
    let out = namerctl(&url, d, &["dtab", "update", "internal", &unversioned]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    let got = ok(&url, d, &["dtab", "get", "internal"]).await;
    assert!(got.starts_with("# version AAAAAAAAAAI=\n"), "{got}");
    let out = ok(
        &url,
        d,
        &["dtab", "update", "internal", &unversioned, "--force"],
    )
    .await;
    assert_eq!(out, "Updated internal\n");
    let got = ok(&url, d, &["dtab", "get", "internal"]).await;
    assert_eq!(got, format!("# version AAAAAAAAAAM=\n{HANDBOOK_PRETTY}"));

    // A dtab namerd cannot parse: its whole multi-line explanation is
    // quoted, up to the closing quote of the input it points into.
    std::fs::write(
        d.join("broken.dtab"),
        "# version AAAAAAAAAAM=\n/svc => /host;\n/host/world => (/srv/world-v1;\n",
    )
    .unwrap();
    let out = namerctl(
        &url,
        d,
        &["dtab", "update", "internal", &path("broken.dtab")],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("Error: unexpected response: 400 Bad Request: ")
            && err.contains("/host/world => (/srv/world-v1[;]")
            && err.ends_with("'\n"),
        "{err}"
    );

    // History shows every version, oldest first.
    let history = ok(&url, d, &["dtab", "history", "internal"]).await;
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 4, "{history}");
    assert!(lines[0].starts_with("VERSION "), "{history}");
    for (line, (version, op)) in lines[1..].iter().zip([
        ("AAAAAAAAAAE=", "create"),
        ("AAAAAAAAAAI=", "update"),
        ("AAAAAAAAAAM=", "update"),
    ]) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&cells[..2], [version, op], "{line}");
    }
    assert!(lines[2].contains("/srv/world-v2"), "{history}");
    let json = ok(&url, d, &["dtab", "history", "internal", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(3), "{json}");

    // Roll back to version 1: the original dtab again, at a new version.
    let out = ok(&url, d, &["dtab", "rollback", "internal", "AAAAAAAAAAE="]).await;
    let prefix = "Rolled back internal to version AAAAAAAAAAE= (new version ";
    assert!(out.starts_with(prefix) && out.ends_with(")\n"), "{out}");
    let new_version = &out[prefix.len()..out.len() - 2];
    for old in ["AAAAAAAAAAE=", "AAAAAAAAAAI=", "AAAAAAAAAAM="] {
        assert_ne!(new_version, old);
    }
    let got = ok(&url, d, &["dtab", "get", "internal"]).await;
    assert_eq!(got, format!("# version {new_version}\n{HANDBOOK_PRETTY}"));

    // Delete; then get reports the Go tool's not-found error.
    assert_eq!(
        ok(&url, d, &["dtab", "delete", "internal"]).await,
        "Deleted internal\n"
    );
    let out = namerctl(&url, d, &["dtab", "get", "internal"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error: resource was not found by ID or name\n"
    );

    namerd.shutdown().await;
}

async fn fifty_concurrent_updates_from_one_version(namerd: namerd::testing::TestNamerd) {
    const WRITERS: usize = 50;
    let url = namerd.base_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    std::fs::write(d.join("base.dtab"), HANDBOOK).unwrap();
    let base = d.join("base.dtab");
    ok(
        &url,
        d,
        &["dtab", "create", "internal", base.to_str().unwrap()],
    )
    .await;
    let version = "AAAAAAAAAAE=";

    // Each writer sends its own dtab so the winner is identifiable.
    let mut writers = Vec::new();
    for i in 0..WRITERS {
        let file = d.join(format!("w{i}.dtab"));
        std::fs::write(&file, format!("/svc => /writer/{i};\n")).unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_namerctl"))
            .args(["dtab", "update", "internal"])
            .arg(&file)
            .args(["--version", version])
            .current_dir(d)
            .env("NAMERCTL_BASE_URL", &url)
            .output();
        writers.push(tokio::spawn(child));
    }
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for (i, writer) in writers.into_iter().enumerate() {
        let out = writer.await.unwrap().unwrap();
        match out.status.code() {
            Some(0) => winners.push(i),
            Some(3) => {
                conflicts += 1;
                assert_eq!(
                    stderr(&out),
                    "Error: version conflict: dtab internal has changed since version \
                     AAAAAAAAAAE=; the current version is AAAAAAAAAAI=\n"
                );
            }
            code => panic!("writer {i} exited with {code:?}: {}", stderr(&out)),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(conflicts, WRITERS - 1);

    // The stored dtab is the winner's, at the successor of the version.
    let got = ok(&url, d, &["dtab", "get", "internal"]).await;
    assert_eq!(
        got,
        format!(
            "# version AAAAAAAAAAI=\n/svc  => /writer/{} ;\n",
            winners[0]
        )
    );

    namerd.shutdown().await;
}

/// namerd answers the history a page of 100 at a time: `dtab history`
/// follows the links and shows every version once, oldest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_follows_every_page() {
    use namerctl::cli::TlsFiles;
    use namerctl::client::{NamerdClient, Payload};
    use namerctl::config::BaseUrl;

    let dir = tempfile::tempdir().unwrap();
    let namerd = namerd::testing::start_sqlite(dir.path()).await;
    let url = namerd.base_url();
    let base = BaseUrl::parse(&url).unwrap();
    let timeout = std::time::Duration::from_secs(10);
    let client = NamerdClient::new(base, timeout, &TlsFiles::default()).unwrap();
    let versions = 230;
    for i in 1..=versions {
        let payload = Payload {
            content_type: "application/dtab",
            body: format!("/svc=>/v{i}").into(),
        };
        client.update("paged", payload, None).await.unwrap();
    }
    let d = dir.path();
    let table = ok(&url, d, &["dtab", "history", "paged"]).await;
    let lines: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(lines.len(), versions, "{table}");
    for (i, line) in lines.iter().enumerate() {
        assert!(line.contains(&format!("/svc=>/v{}", i + 1)), "{line}");
    }
    let json = ok(&url, d, &["dtab", "history", "paged", "--json"]).await;
    let json: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let first = json.first().map(|e| e["op"].as_str());
    assert_eq!((json.len(), first), (versions, Some(Some("create"))));
    for (i, entry) in json.iter().enumerate() {
        assert_eq!(
            entry["dtab"][0]["dst"],
            format!("/v{}", i + 1),
            "oldest first"
        );
    }
    namerd.shutdown().await;
}
