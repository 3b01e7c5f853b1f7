//! Soak: a mixed run through two proxies in a row (HTTP/1.1, HTTP/2 and
//! gRPC-shaped requests), with a dtab shift every 10 s, an endpoint change
//! every second and namerd restarted every `SOAK_RESTART_SECS` (600 s; 60
//! s in the short form). Samples each process's RSS and file descriptors
//! and the failures every second, writes them as an HTML page with a plot
//! (`SOAK_REPORT`, default `soak-report.html` in cargo's
//! `CARGO_TARGET_TMPDIR`, `target/tmp/`), and asserts no
//! failed request and no growth beyond noise.
//!
//! CI runs 2 minutes; a person runs an hour with
//! `SOAK_SECS=3600 SOAK_RESTART_SECS=600 cargo test -p l5d-e2e --test faults soak -- --nocapture`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use l5d_e2e::{Demo, Namerd, Proxy};

use super::load::{Kind, Load};
use super::mesh_faults::Forwarder;

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

fn proxy_config(relay: u16, root_http: &str, root_h2: &str) -> String {
    let interpreter = |root: &str| {
        format!(
            "{{kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/{relay}, root: {root}, retry: {{baseSeconds: 1, maxSeconds: 2}}}}"
        )
    };
    format!(
        "admin: {{port: 0}}\nrouters:\n\
         - protocol: http\n  label: http\n  servers: [{{port: 0}}]\n  interpreter: {}\n\
         - protocol: h2\n  label: h2\n  servers: [{{port: 0}}]\n  interpreter: {}\n",
        interpreter(root_http),
        interpreter(root_h2)
    )
}

/// One sample of the run.
struct Sample {
    at: f64,
    /// (RSS MiB, descriptors) of namerd, the outgoing and the incoming proxy.
    procs: [(f64, usize); 3],
    failed: u64,
    sent: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_run_with_shifts_churn_and_restarts_fails_nothing_and_does_not_grow() {
    let duration = env_secs("SOAK_SECS", 120);
    let restart_every = env_secs("SOAK_RESTART_SECS", 60);
    let dir = tempfile::tempdir().unwrap();
    let disco = dir.path().join("disco");
    std::fs::create_dir(&disco).unwrap();
    let mut demos = Vec::new();
    for name in ["v1", "v2", "p0", "p1", "p2", "p3"] {
        demos.push(Demo::start("http", name, &[]).await);
    }
    std::fs::write(disco.join("v1"), demos[0].fs_line()).unwrap();
    std::fs::write(disco.join("v2"), demos[1].fs_line()).unwrap();
    let pool = |k: usize| -> String { (0..3).map(|i| demos[2 + (k + i) % 4].fs_line()).collect() };
    let write_pool = |k: usize| {
        let tmp = dir.path().join("pool.tmp");
        std::fs::write(&tmp, pool(k)).unwrap();
        std::fs::rename(&tmp, disco.join("pool")).unwrap();
    };
    write_pool(0);
    let config = Namerd::fs_config(dir.path());
    let mut namerd = Namerd::start(&config).await;
    let relay = Forwarder::start(namerd.mesh.parse().unwrap()).await;
    let internal = |world: &str| {
        format!("/srv => /#/io.l5d.fs;\n/svc => /srv;\n/svc/world => /srv/{world};\n")
    };
    namerd
        .create_dtab(dir.path(), "internal", &internal("v1"))
        .await;
    let incoming = Proxy::start(&proxy_config(relay.addr().port(), "/internal", "/internal")).await;
    let port = |label: &str| {
        incoming
            .router(label)
            .rsplit(':')
            .next()
            .unwrap()
            .to_string()
    };
    namerd
        .create_dtab(
            dir.path(),
            "out-http",
            &format!("/svc => /$/inet/127.0.0.1/{};\n", port("http")),
        )
        .await;
    namerd
        .create_dtab(
            dir.path(),
            "out-h2",
            &format!("/svc => /$/inet/127.0.0.1/{};\n", port("h2")),
        )
        .await;
    let outgoing = Proxy::start(&proxy_config(relay.addr().port(), "/out-http", "/out-h2")).await;
    let (http, h2) = (
        outgoing.router("http").to_string(),
        outgoing.router("h2").to_string(),
    );

    let loads = [
        Load::start_kind(Kind::Http1, &http, "world", 200, 4),
        Load::start_kind(Kind::H2, &h2, "world", 100, 2),
        Load::start_kind(Kind::Grpc, &h2, "pool", 100, 2),
    ];
    let start = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let (mut shifts, mut restarts, mut k) = (0, 0, 0);
    let mut last_restart = Instant::now();
    while start.elapsed() < duration {
        tick.tick().await;
        let secs = start.elapsed().as_secs();
        k += 1;
        write_pool(k);
        if secs > 0 && secs.is_multiple_of(10) {
            let world = if shifts % 2 == 0 { "v2" } else { "v1" };
            let (_, version) = namerd.dtab("internal").await;
            namerd
                .update_dtab(dir.path(), "internal", &version, &internal(world))
                .await;
            shifts += 1;
        }
        if last_restart.elapsed() >= restart_every {
            namerd.stop().await;
            namerd = Namerd::start(&config).await;
            relay.restore(namerd.mesh.parse().unwrap());
            last_restart = Instant::now();
            restarts += 1;
        }
        let (mut failed, mut sent) = (0, 0);
        for l in &loads {
            let t = l.tally();
            failed += t.failures();
            sent += t.sent;
        }
        let pids = [
            namerd.pid().unwrap(),
            outgoing.pid().unwrap(),
            incoming.pid().unwrap(),
        ];
        samples.push(Sample {
            at: start.elapsed().as_secs_f64(),
            procs: pids.map(|p| (rss_mib(p), fds(p))),
            failed,
            sent,
        });
    }
    let mut totals = (0, 0);
    for l in loads {
        let t = l.stop().await;
        totals.0 += t.sent;
        totals.1 += t.failures();
        assert_eq!(t.failures(), 0, "failed: {:?}", t.failed);
    }
    let report = std::env::var("SOAK_REPORT")
        .unwrap_or_else(|_| concat!(env!("CARGO_TARGET_TMPDIR"), "/soak-report.html").to_string());
    std::fs::write(&report, html(&samples)).unwrap();
    // Growth beyond noise: the proxies' last third against their second
    // (the first is warm-up), within 20 % or 10 MiB; descriptors within 10.
    // namerd restarts, so only its descriptors are compared, per process.
    let third = samples.len() / 3;
    let mean =
        |s: &[Sample], p: usize| s.iter().map(|x| x.procs[p].0).sum::<f64>() / s.len() as f64;
    let mut summary = String::new();
    for (p, name) in [(1, "outgoing proxy"), (2, "incoming proxy")] {
        let (mid, end) = (
            mean(&samples[third..2 * third], p),
            mean(&samples[2 * third..], p),
        );
        let (fd_mid, fd_end) = (
            samples[third].procs[p].1,
            samples.last().unwrap().procs[p].1,
        );
        let _ = write!(
            summary,
            " {name}: RSS {mid:.1} -> {end:.1} MiB, descriptors {fd_mid} -> {fd_end};"
        );
        assert!(
            end <= (mid * 1.2).max(mid + 10.0),
            "{name} RSS grew {mid:.1} -> {end:.1} MiB"
        );
        assert!(
            fd_end <= fd_mid + 10,
            "{name} descriptors grew {fd_mid} -> {fd_end}"
        );
    }
    eprintln!(
        "soak: {:?}, {} requests (HTTP/1.1, h2, gRPC through two proxies), {} failed; {shifts} dtab shifts, {k} endpoint changes, \
         {restarts} namerd restarts;{summary} report {report}",
        start.elapsed(),
        totals.0,
        totals.1
    );
    outgoing.stop().await;
    incoming.stop().await;
    namerd.stop().await;
    for d in demos {
        d.stop().await;
    }
}

/// One line of a chart: its name, colour and (seconds, value) points.
type Series<'a> = (String, &'a str, Vec<(f64, f64)>);

/// The samples as a page: RSS and descriptors of each process and the
/// failures over time, drawn as SVG polylines (no script, no dependency).
fn html(samples: &[Sample]) -> String {
    let names = ["namerd", "outgoing proxy", "incoming proxy"];
    let colors = ["#1f77b4", "#d62728", "#2ca02c"];
    let t_max = samples.last().map_or(1.0, |s| s.at).max(1.0);
    let chart = |title: &str, series: Vec<Series<'_>>| {
        let y_max = series
            .iter()
            .flat_map(|(_, _, pts)| pts.iter().map(|p| p.1))
            .fold(1.0f64, f64::max);
        let mut svg = format!(
            "<h2>{title} (max {y_max:.1})</h2><svg width=\"800\" height=\"200\" style=\"border:1px solid #ccc\">"
        );
        for (name, color, pts) in &series {
            let points: Vec<String> = pts
                .iter()
                .map(|(x, y)| {
                    format!(
                        "{:.1},{:.1}",
                        x / t_max * 790.0 + 5.0,
                        195.0 - y / y_max * 190.0
                    )
                })
                .collect();
            let _ = write!(
                svg,
                "<polyline fill=\"none\" stroke=\"{color}\" points=\"{}\"><title>{name}</title></polyline>",
                points.join(" ")
            );
        }
        svg.push_str("</svg><p>");
        for (name, color, _) in &series {
            let _ = write!(svg, "<span style=\"color:{color}\">&#9632; {name}</span> ");
        }
        svg.push_str("</p>");
        svg
    };
    let per_proc = |f: &dyn Fn(&Sample, usize) -> f64| {
        (0..3)
            .map(|p| {
                (
                    names[p].to_string(),
                    colors[p],
                    samples.iter().map(|s| (s.at, f(s, p))).collect(),
                )
            })
            .collect()
    };
    let mut page =
        String::from("<!doctype html><meta charset=\"utf-8\"><title>soak</title><h1>Soak</h1>");
    page.push_str(&chart("RSS, MiB", per_proc(&|s, p| s.procs[p].0)));
    page.push_str(&chart(
        "File descriptors",
        per_proc(&|s, p| s.procs[p].1 as f64),
    ));
    page.push_str(&chart(
        "Requests sent and failed",
        vec![
            (
                "sent".to_string(),
                "#555",
                samples.iter().map(|s| (s.at, s.sent as f64)).collect(),
            ),
            (
                "failed".to_string(),
                "#d62728",
                samples.iter().map(|s| (s.at, s.failed as f64)).collect(),
            ),
        ],
    ));
    page
}
