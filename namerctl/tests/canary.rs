//! The canary and the previews (`dtab diff`, `dtab explain`, `dtab update
//! --dry-run`) with the real `namerctl` binary against a namerd started
//! in-process, on each store backend. The gate is a shell script that does
//! what another operator would at a given step (edit another dentry, edit
//! the canary's, look at the status, start a second canary) and then
//! decides: the canary's own gate is the synchronisation point, so no
//! test waits on time.

use std::path::Path;

#[path = "support/run.rs"]
mod run;

use run::{namerctl, stderr, stdout};

/// Destinations that bind without namers (`/$/inet`), so names stream.
const DTAB: &str = "/srv => /$/inet/127.0.0.1; /tmp => /srv; /host/world => /srv/8081; \
                    /host/other => /srv/8083; /svc => /host;\n";

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

on_every_backend!(canary_aborts_keeping_other_edits: abort_in_memory, abort_on_sqlite, abort_on_postgres);
on_every_backend!(canary_refuses_over_an_edit: refuse_in_memory, refuse_on_sqlite, refuse_on_postgres);

async fn setup(url: &str, d: &Path) {
    std::fs::write(d.join("internal.dtab"), DTAB).unwrap();
    let out = namerctl(url, d, &["dtab", "create", "internal", "internal.dtab"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn gate(d: &Path, script: &str) -> String {
    let exe = env!("CARGO_BIN_EXE_namerctl");
    let file = d.join("gate.sh");
    std::fs::write(
        &file,
        format!("set -e\nN={exe}\ncd {}\n{script}", d.display()),
    )
    .unwrap();
    format!("sh {}", file.display())
}

fn start_args(gate: &str) -> Vec<String> {
    [
        "canary",
        "start",
        "internal",
        "--path",
        "/host/world",
        "--from",
        "/srv/8081",
        "--to",
        "/srv/8082",
        "--steps",
        "1,50,100",
        "--interval",
        "0s",
        "--gate",
        gate,
    ]
    .map(String::from)
    .to_vec()
}

/// At step 1 another operator edits `/tmp`, looks at the status and tries
/// a second canary on the same path; the gate fails at step 2: the abort
/// restores `/host/world` and keeps `/tmp`.
async fn canary_aborts_keeping_other_edits(namerd: namerd::testing::TestNamerd) {
    let url = namerd.base_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(&url, d).await;
    let script = r#"
if [ "$NAMERCTL_CANARY_STEP" = 1 ]; then
  $N dtab get internal | sed 's#^/tmp  *=> /srv ;#/tmp => /srv/tmp2 ;#' > edited.dtab
  $N dtab update internal edited.dtab > /dev/null
  $N canary status internal > status.txt
  set +e
  $N canary start internal --path /host/world --from /srv/8081 --to /srv/8084 > second.out 2>&1
  echo "exit $?" >> second.out
  exit 0
fi
exit 1
"#;
    let args = start_args(&gate(d, script));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = namerctl(&url, d, &args).await;
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let status = std::fs::read_to_string(d.join("status.txt")).unwrap();
    assert!(
        status.starts_with("/host/world: step 1/3 (99% /srv/8081 1% /srv/8082)"),
        "{status}"
    );
    let second = std::fs::read_to_string(d.join("second.out")).unwrap();
    assert!(
        second.contains("a canary is already running on /host/world in dtab internal (step 1/3"),
        "{second}"
    );
    assert!(second.ends_with("exit 3\n"), "{second}");
    assert_eq!(
        stderr(&out),
        "Error: the gate failed after step 2 of the canary on /host/world (exit status: 1); aborted\n"
    );
    let got = stdout(&namerctl(&url, d, &["dtab", "get", "internal", "--pretty=false"]).await);
    assert_eq!(
        got,
        "/srv=>/$/inet/127.0.0.1;/tmp=>/srv/tmp2;/host/world=>/srv/8081;/host/other=>/srv/8083;/svc=>/host;\n"
    );
    let status = stdout(&namerctl(&url, d, &["canary", "status", "internal"]).await);
    assert!(
        status.starts_with("/host/world: aborted in version AAAAAAAAAAU= by "),
        "{status}"
    );
}

/// At step 1 another operator edits the canary's own dentry: the next step
/// and the abort both refuse, naming the change.
async fn canary_refuses_over_an_edit(namerd: namerd::testing::TestNamerd) {
    let url = namerd.base_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(&url, d).await;
    let script = r#"
$N dtab get internal | sed 's#^/host/world  *=> .*#/host/world => /srv/8085 ;#' > edited.dtab
$N dtab update internal edited.dtab > /dev/null
"#;
    let args = start_args(&gate(d, script));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = namerctl(&url, d, &args).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = namerctl(&url, d, &["canary", "abort", "internal"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with(
            "Error: the canary's dentry for /host/world in dtab internal was changed by "
        ) && err.ends_with(
            " in version AAAAAAAAAAM= (now `/host/world => /srv/8085`, the canary wrote \
             `/host/world => 99.00*/srv/8081 & /srv/8082`); not overwriting their change\n"
        ),
        "{err}"
    );
}

/// `dtab diff` against a file and between versions, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_is_dentry_level() {
    let namerd = namerd::testing::start_in_memory().await;
    let url = namerd.base_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(&url, d).await;
    let same = namerctl(&url, d, &["dtab", "diff", "internal", "internal.dtab"]).await;
    assert_eq!((same.status.code(), stdout(&same).as_str()), (Some(0), ""));
    let edited = "# version AAAAAAAAAAE=\n/svc => /host ;\n/srv => /$/inet/127.0.0.1 ;\n\
                  /host/world => 99 * /srv/8081 & 1 * /srv/8082 ;\n/host/other => /srv/8083 ;\n\
                  /new => /srv/9 ;\n";
    std::fs::write(d.join("edited.dtab"), edited).unwrap();
    let out = namerctl(&url, d, &["dtab", "diff", "internal", "edited.dtab"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), include_str!("fixtures/diff.txt"));
    let out = namerctl(&url, d, &["dtab", "update", "internal", "edited.dtab"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let range = "AAAAAAAAAAE=..AAAAAAAAAAI=";
    let out = namerctl(&url, d, &["dtab", "diff", "internal", "--version", range]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), include_str!("fixtures/diff-versions.txt"));
    let out = namerctl(&url, d, &["dtab", "explain", "internal", "/svc/world"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), include_str!("fixtures/explain.txt"));
    let out = namerctl(&url, d, &["dtab", "diff", "internal", "missing.dtab"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
