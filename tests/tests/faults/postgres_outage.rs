//! R6 with the binaries: PostgreSQL stopped for 30 s (on a cluster the
//! test owns) while an operator keeps writing with namerctl: every write
//! during the outage fails with an error and a non-zero exit, none is
//! acknowledged and then lost, reads keep answering the last good dtab
//! marked `l5d-stale: true`, and writes succeed again after it returns.
//! Needs root and the PostgreSQL server binaries (skipped loudly without,
//! failed under `CI=true`).

use std::time::{Duration, Instant};

use l5d_e2e::{Namerd, curl, namerctl};

use super::pg_cluster::PgCluster;

const OUTAGE: Duration = Duration::from_secs(30);

/// One write: `dtab get` for the version, then `dtab update` with it. The
/// exit status and what namerctl said.
async fn write(base: &str, file: &std::path::Path, i: usize) -> (i32, String) {
    let (code, current, err) = namerctl(base, &["dtab", "get", "internal"]).await;
    if code != 0 {
        return (code, err);
    }
    let version = current
        .lines()
        .find_map(|l| l.strip_prefix("# version "))
        .expect("a version line")
        .trim()
        .to_string();
    std::fs::write(file, format!("/svc => /#/io.l5d.fs;\n/x => /y{i};\n")).unwrap();
    let args = [
        "dtab",
        "update",
        "--version",
        &version,
        "internal",
        file.to_str().unwrap(),
    ];
    let (code, out, err) = namerctl(base, &args).await;
    (code, format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_loses_no_acknowledged_write_and_reads_stay_served() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let port = cluster.connect_options().get_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("disco")).unwrap();
    let namerd = Namerd::start(&format!(
        "admin: {{port: 0}}\n\
         storage: {{kind: io.l5d.postgres, url: \"postgres://postgres@127.0.0.1:{port}/postgres\", pollIntervalMs: 500}}\n\
         namers: [{{kind: io.l5d.fs, rootDir: {}}}]\n\
         interfaces:\n- {{kind: io.l5d.httpController, port: 0}}\n- {{kind: io.l5d.mesh, port: 0}}\n",
        dir.path().join("disco").display()
    ))
    .await;
    namerd
        .create_dtab(dir.path(), "internal", "/svc => /#/io.l5d.fs;\n")
        .await;
    let base = namerd.base_url();
    let file = dir.path().join("w.dtab");
    let mut acked = Vec::new();
    for i in 0..5 {
        let (code, said) = write(&base, &file, i).await;
        assert_eq!(code, 0, "{said}");
        acked.push(i);
    }
    let last_good = *acked.last().unwrap();

    cluster.stop().await;
    let down = Instant::now();
    let mut during = 0;
    let mut first_refusal = None;
    let mut i = 100;
    while down.elapsed() < OUTAGE {
        let (code, said) = write(&base, &file, i).await;
        if code == 0 {
            // Acknowledged with the database down: refused below.
            acked.push(i);
        } else {
            assert!(!said.trim().is_empty(), "a failed write says why");
            first_refusal.get_or_insert((code, said.trim().to_string()));
            during += 1;
        }
        // Reads answer the last good dtab, marked stale.
        let (code, out, err) =
            curl(&["-sS", "-D", "-", &format!("{base}/api/1/dtabs/internal")]).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(
            out.contains(&format!("\"/y{last_good}\"")),
            "the last good dtab: {out}"
        );
        if down.elapsed() > Duration::from_secs(5) {
            assert!(
                out.to_ascii_lowercase().contains("l5d-stale: true"),
                "marked stale: {out}"
            );
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cluster.start_again().await;
    let up = Instant::now();
    loop {
        let (code, said) = write(&base, &file, i).await;
        if code == 0 {
            acked.push(i);
            break;
        }
        assert!(
            up.elapsed() < Duration::from_secs(30),
            "writes do not recover: {said}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recovered = up.elapsed();
    let (code, history, err) = namerctl(&base, &["dtab", "--json", "history", "internal"]).await;
    assert_eq!(code, 0, "{err}");
    for a in &acked {
        assert!(
            history.contains(&format!("\"/y{a}\"")),
            "acknowledged write {a} is in the history"
        );
    }
    eprintln!(
        "R6: PostgreSQL down {OUTAGE:?}: {during} writes refused (none acknowledged; the first: {first_refusal:?}), \
         reads served the last good dtab marked stale; {} acknowledged writes all in the history; writes succeeded \
         again {recovered:?} after restart",
        acked.len()
    );
    assert_eq!(
        acked.iter().filter(|a| (100..i).contains(*a)).count(),
        0,
        "no write was acknowledged during the outage"
    );
    // Each refused write waits out namerd's storage timeout (seconds).
    assert!(during >= 2, "{during} writes tried during the outage");
    namerd.stop().await;
}
