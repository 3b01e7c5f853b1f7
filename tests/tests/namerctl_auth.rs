//! A namerd process that authenticates its dtab API (a token file with
//! hashed tokens) and the namerctl binary against it: without a token a
//! write is refused with 401 and namerctl exits 4, with another identity's
//! token 403 and exit 5; the right token, from `--token-file` or
//! `NAMERCTL_TOKEN_FILE`, writes, and the history names its identity.
//! Refusals are counted on the admin metrics and logged without the token.

use std::path::Path;

use l5d_e2e::{Namerd, binary, curl, outcome};
use namerd::auth::hashed;
use tokio::process::Command;

const DEPLOYER_TOKEN: &str = "e2e-deployer-7d41c9a0b2";
const READER_TOKEN: &str = "e2e-reader-51f0e6";

/// namerctl with `args` and `env`; (status, stdout, stderr).
async fn namerctl(base_url: &str, env: &[(&str, &Path)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(binary("namerctl"));
    cmd.args(["--base-url", base_url])
        .args(args)
        .env_remove("NAMERCTL_TOKEN_FILE")
        .env("USER", "alice");
    for (key, value) in env {
        cmd.env(key, value);
    }
    outcome(&cmd.output().await.expect("namerctl runs"))
}

#[tokio::test]
async fn namerctl_with_and_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tokens = d.join("tokens.yaml");
    std::fs::write(
        &tokens,
        format!(
            "deployer: {}\nreader: {}\n",
            hashed(DEPLOYER_TOKEN),
            hashed(READER_TOKEN)
        ),
    )
    .unwrap();
    let deployer = d.join("deployer.token");
    std::fs::write(&deployer, format!("{DEPLOYER_TOKEN}\n")).unwrap();
    let reader = d.join("reader.token");
    std::fs::write(&reader, READER_TOKEN).unwrap();
    let wrong = d.join("wrong.token");
    std::fs::write(&wrong, "e2e-not-a-known-token").unwrap();
    let dtab = d.join("internal.dtab");
    std::fs::write(&dtab, "/svc => /host ;\n").unwrap();
    let dtab = dtab.to_str().unwrap();

    let config = format!(
        "admin: {{ip: 127.0.0.1, port: 0}}\n\
         storage: {{kind: io.l5d.inMemory}}\n\
         interfaces:\n\
         - kind: io.l5d.httpController\n  ip: 127.0.0.1\n  port: 0\n  auth:\n    \
         tokenFile: {}\n    permissions:\n      internal: {{write: [deployer], read: [reader]}}\n\
         - {{kind: io.l5d.mesh, ip: 127.0.0.1, port: 0}}\n",
        tokens.display()
    );
    let namerd = Namerd::start_logged(&config).await;
    let url = namerd.base_url();

    // No token: 401, exit 4, and what to do about it.
    let (status, _, stderr) = namerctl(&url, &[], &["dtab", "create", "internal", dtab]).await;
    assert_eq!(status, 4, "{stderr}");
    assert!(
        stderr.contains("not authenticated (401 Unauthorized): authentication required")
            && stderr.contains("--token-file or NAMERCTL_TOKEN_FILE"),
        "{stderr}"
    );

    // A token namerd does not know: 401, exit 4, naming the file.
    let (status, _, stderr) = namerctl(
        &url,
        &[],
        &[
            "--token-file",
            wrong.to_str().unwrap(),
            "dtab",
            "create",
            "internal",
            dtab,
        ],
    )
    .await;
    assert_eq!(status, 4, "{stderr}");
    assert!(
        stderr.contains("the bearer token is not valid")
            && stderr.contains(&format!("did not accept the token in {}", wrong.display())),
        "{stderr}"
    );

    // Another identity's token (from the environment): 403, exit 5.
    let (status, _, stderr) = namerctl(
        &url,
        &[("NAMERCTL_TOKEN_FILE", &reader)],
        &["dtab", "create", "internal", dtab],
    )
    .await;
    assert_eq!(status, 5, "{stderr}");
    assert!(
        stderr
            .contains("not allowed (403 Forbidden): reader may not write dtab namespace internal"),
        "{stderr}"
    );

    // The right token writes; the history names the identity, with the
    // client's l5d-author as a note.
    let (status, stdout, stderr) = namerctl(
        &url,
        &[("NAMERCTL_TOKEN_FILE", &deployer)],
        &["dtab", "create", "internal", dtab],
    )
    .await;
    assert_eq!(
        (status, stdout.as_str()),
        (0, "Created internal\n"),
        "{stderr}"
    );
    let (status, history, stderr) = namerctl(
        &url,
        &[],
        &[
            "--token-file",
            reader.to_str().unwrap(),
            "dtab",
            "history",
            "internal",
            "--json",
        ],
    )
    .await;
    assert_eq!(status, 0, "{stderr}");
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    let author = history[0]["author"].as_str().unwrap();
    assert!(
        author.starts_with("deployer (127.0.0.1:") && author.ends_with(", l5d-author: alice)"),
        "{author}"
    );
    // Reads are open by default.
    let (status, stdout, _) = namerctl(&url, &[], &["dtab", "get", "internal"]).await;
    assert_eq!(status, 0);
    assert!(stdout.contains("/svc  => /host ;"), "{stdout}");

    // Counted by reason and namespace.
    let metrics_url = format!("http://{}/admin/metrics/prometheus", namerd.admin);
    let (_, metrics, _) = curl(&[&metrics_url]).await;
    let count = |reason: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("namerd_http_auth_refused_total{")
                    && l.contains(&format!("reason=\"{reason}\""))
                    && l.contains("namespace=\"internal\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_string)
    };
    assert_eq!(count("no_credentials").as_deref(), Some("1"), "{metrics}");
    assert_eq!(count("invalid_token").as_deref(), Some("1"), "{metrics}");
    assert_eq!(count("forbidden").as_deref(), Some("1"), "{metrics}");

    // Logged, and never with a token.
    let log = namerd.stop_with_log().await;
    assert_eq!(log.matches("refused").count(), 3, "{log}");
    for secret in [DEPLOYER_TOKEN, READER_TOKEN, "e2e-not-a-known-token"] {
        assert!(!log.contains(secret), "the log shows a token: {log}");
    }
}
