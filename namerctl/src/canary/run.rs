//! The canary commands against namerd. Every write is a read of the
//! history, a check of the canary's state, and a compare-and-set of the
//! whole dtab that changes only the canary's dentry; a conflict (someone
//! wrote meanwhile) is read again and retried, so other dentries edited
//! meanwhile are kept, and a change of the canary's own dentry stops it.

use std::io::Write;
use std::time::Duration;

use super::{Action, Marker, Running, State, dentry_index, destination, state, with_dentry};
use crate::api::Dentry;
use crate::client::{MAX_AUTHOR_BYTES, NamerdClient, Payload, declared_author};
use crate::error::{EditedCanary, Error};
use crate::input::CONTENT_TYPE_JSON;

/// Compare-and-set attempts before giving up on a dtab that keeps
/// changing under us.
const MAX_ATTEMPTS: usize = 10;

/// `canary start`'s plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub path: String,
    pub from: String,
    pub to: String,
    pub steps: Vec<u8>,
    pub interval: Duration,
    /// A shell command run before each next step; non-zero aborts.
    pub gate: Option<String>,
}

/// Writes each step, waiting the interval and asking the gate between
/// them; a failed gate aborts (and is [`Error::CanaryGateFailed`]).
pub async fn start(
    client: &NamerdClient,
    ns: &str,
    plan: &Plan,
    out: &mut dyn Write,
) -> Result<(), Error> {
    check_marker(plan)?;
    let n = plan.steps.len();
    for (i, &percent) in plan.steps.iter().enumerate() {
        let step = i + 1;
        if i > 0 {
            tokio::time::sleep(plan.interval).await;
            if let Some(gate) = &plan.gate {
                let status = run_gate(gate, ns, plan, i, percent).await?;
                if !status.success() {
                    let restored = abort(client, ns, Some(&plan.path)).await?;
                    say(out, &restored)?;
                    return Err(Error::CanaryGateFailed {
                        path: plan.path.clone(),
                        step: i,
                        status: status.to_string(),
                    });
                }
            }
        }
        let action = match (i, percent) {
            (_, 100) => Action::Promote,
            (0, _) => Action::Start,
            _ => Action::Step,
        };
        let marker = Marker {
            action,
            path: plan.path.clone(),
            from: plan.from.clone(),
            to: plan.to.clone(),
            steps: plan.steps.clone(),
            step,
        };
        let dentry = Dentry::new(&plan.path, destination(&plan.from, &plan.to, percent));
        let version = write(
            client,
            ns,
            &marker,
            |st| expect_step(ns, &plan.path, st, i),
            |_| Some(dentry.clone()),
        )
        .await?;
        say(
            out,
            &format!(
                "step {step}/{n}: {percent}% of {} to {} (version {version})\n",
                plan.path, plan.to
            ),
        )?;
    }
    Ok(())
}

/// Refuses a canary whose markers namerd would not record: it drops an
/// `l5d-author` over [`MAX_AUTHOR_BYTES`] (or one that is not printable
/// ASCII), and with it the canary's state, so a canary started with one
/// could be neither seen nor aborted. The promote marker of the last step
/// is the longest the canary writes (an abort's action word is shorter).
pub fn check_marker(plan: &Plan) -> Result<(), Error> {
    let longest = Marker {
        action: Action::Promote,
        path: plan.path.clone(),
        from: plan.from.clone(),
        to: plan.to.clone(),
        steps: plan.steps.clone(),
        step: plan.steps.len(),
    }
    .render();
    let declared = declared_author(Some(&longest)).unwrap_or_default();
    let printable = declared.chars().all(|c| c == ' ' || c.is_ascii_graphic());
    if declared.len() > MAX_AUTHOR_BYTES || !printable {
        return Err(Error::CanaryMarkerTooLong {
            marker: longest,
            bytes: declared.len(),
        });
    }
    Ok(())
}

/// The state before step `i` (0-based) may be written: none running
/// before the first, ours at step `i` after.
fn expect_step(ns: &str, path: &str, st: &State, i: usize) -> Result<(), Error> {
    match (st, i) {
        (State::None | State::Over { .. }, 0) => Ok(()),
        (State::Running(r), 0) if r.edited.is_some() => Ok(()),
        (State::Running(r), 0) => Err(Error::CanaryRunning {
            ns: ns.into(),
            path: path.into(),
            step: r.last.step,
            steps: r.last.steps.len(),
            version: r.start_version.clone(),
            by: r.started_by.clone(),
        }),
        (State::Running(r), _) if r.edited.is_none() && r.last.step == i => Ok(()),
        (State::Running(r), _) => Err(edited_error(ns, path, r)),
        (
            State::Over {
                last,
                version,
                author,
            },
            _,
        ) => Err(Error::CanaryOver {
            path: path.into(),
            action: if last.action == Action::Abort {
                "aborted"
            } else {
                "promoted"
            },
            version: version.clone(),
            by: author.clone(),
        }),
        (State::None, _) => Err(Error::NoCanary {
            ns: ns.into(),
            path: Some(path.into()),
        }),
    }
}

fn edited_error(ns: &str, path: &str, r: &Running) -> Error {
    let show = |d: &Option<Dentry>| match d {
        Some(d) => format!("{} => {}", d.prefix, d.dst),
        None => "no dentry".to_string(),
    };
    match &r.edited {
        Some(e) => Error::CanaryEdited(Box::new(EditedCanary {
            ns: ns.into(),
            path: path.into(),
            version: e.version.clone(),
            by: e.author.clone(),
            now: show(&e.now),
            wrote: show(&r.written),
        })),
        None => Error::CanaryStepMoved {
            path: path.into(),
            step: r.last.step,
        },
    }
}

/// Restores the dentry as it was before the canary, if the canary's
/// dentry is still the one it wrote.
pub async fn abort(client: &NamerdClient, ns: &str, path: Option<&str>) -> Result<String, Error> {
    let (path, last) = running_path(client, ns, path).await?;
    let mut restored = None;
    let version = write(
        client,
        ns,
        &Marker {
            action: Action::Abort,
            ..last
        },
        |st| unedited(ns, &path, st),
        |r| {
            restored = Some(r.original.clone());
            r.original.clone()
        },
    )
    .await?;
    let what = match restored.flatten() {
        Some(d) => format!("restored {} => {}", d.prefix, d.dst),
        None => format!("removed the canary's dentry for {path}"),
    };
    Ok(format!(
        "Aborted the canary on {path}: {what} (version {version})\n"
    ))
}

/// Jumps to 100%: the plain dentry to `to`.
pub async fn promote(client: &NamerdClient, ns: &str, path: Option<&str>) -> Result<String, Error> {
    let (path, last) = running_path(client, ns, path).await?;
    let mut to = String::new();
    let version = write(
        client,
        ns,
        &Marker {
            action: Action::Promote,
            ..last
        },
        |st| unedited(ns, &path, st),
        |r| {
            to = r.last.to.clone();
            Some(Dentry::new(&path, &r.last.to))
        },
    )
    .await?;
    Ok(format!(
        "Promoted the canary on {path}: {path} => {to} (version {version})\n"
    ))
}

/// `canary status`: every canary of the namespace's history that has not
/// ended, or the one on `path`.
pub async fn status(client: &NamerdClient, ns: &str, path: Option<&str>) -> Result<String, Error> {
    let (_, entries) = client.history(ns).await?;
    let paths = match path {
        Some(p) => vec![p.to_string()],
        None => super::paths(&entries),
    };
    let mut out = String::new();
    for path in paths {
        let st = state(ns, &entries, &path).map_err(Error::CanaryState)?;
        out.push_str(&super::status_text(&path, &st));
    }
    if out.is_empty() {
        out = format!("no canary on dtab {ns}\n");
    }
    Ok(out)
}

/// The path given, else the one canary running in the namespace, and
/// the canary's latest marker (what an abort or promote records, with its
/// own action).
async fn running_path(
    client: &NamerdClient,
    ns: &str,
    path: Option<&str>,
) -> Result<(String, Marker), Error> {
    let (_, entries) = client.history(ns).await?;
    let path = match path {
        Some(p) => p.to_string(),
        None => only_running(ns, &entries)?,
    };
    match state(ns, &entries, &path).map_err(Error::CanaryState)? {
        State::Running(r) => Ok((path, r.last)),
        _ => Err(Error::NoCanary {
            ns: ns.into(),
            path: Some(path),
        }),
    }
}

fn only_running(ns: &str, entries: &[crate::api::HistoryEntry]) -> Result<String, Error> {
    let running: Vec<String> = super::paths(entries)
        .into_iter()
        .filter(|p| matches!(state(ns, entries, p), Ok(State::Running(_))))
        .collect();
    match running.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::NoCanary {
            ns: ns.into(),
            path: None,
        }),
        many => Err(Error::CanaryAmbiguous {
            ns: ns.into(),
            paths: many.join(", "),
        }),
    }
}

/// One write of the canary's dentry: read the history, `check` the state,
/// put `dentry(running)` (or for a start, the new dentry) in place in the
/// current dtab, compare-and-set; on a conflict, again. Returns the new
/// version.
/// The check of abort and promote: a canary runs on `path` and its
/// dentry is still the one it wrote.
fn unedited(ns: &str, path: &str, st: &State) -> Result<(), Error> {
    match st {
        State::Running(r) if r.edited.is_none() => Ok(()),
        State::Running(r) => Err(edited_error(ns, path, r)),
        _ => Err(Error::NoCanary {
            ns: ns.into(),
            path: Some(path.to_string()),
        }),
    }
}

async fn write(
    client: &NamerdClient,
    ns: &str,
    marker: &Marker,
    check: impl Fn(&State) -> Result<(), Error>,
    mut dentry: impl FnMut(&Running) -> Option<Dentry>,
) -> Result<String, Error> {
    let note = marker.render();
    let mut last_conflict = None;
    for _ in 0..MAX_ATTEMPTS {
        let (_, entries) = client.history(ns).await?;
        let st = state(ns, &entries, &marker.path).map_err(Error::CanaryState)?;
        check(&st)?;
        let Some(current) = entries.last() else {
            return Err(Error::NotFound);
        };
        let Some(dtab) = current.dtab.clone() else {
            return Err(Error::NotFound);
        };
        let new = match &st {
            State::Running(r) if r.edited.is_none() => dentry(r),
            // A start: the dentry the closure of `start` gives ignores it.
            _ => dentry(&placeholder(&dtab, &marker.path)),
        };
        let body = serde_json::to_vec(&with_dentry(&dtab, &marker.path, new)).expect("dentries");
        let payload = Payload {
            content_type: CONTENT_TYPE_JSON,
            body: body.into(),
        };
        match client
            .update_noted(ns, payload, Some(&current.version), Some(&note))
            .await
        {
            Ok(v) => return Ok(v.unwrap_or_default()),
            Err(e @ Error::Conflict { .. }) => last_conflict = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_conflict.expect("at least one attempt"))
}

/// A stand-in running state for a write that starts a canary.
fn placeholder(dtab: &[Dentry], path: &str) -> Running {
    let original = dentry_index(dtab, path).map(|i| dtab[i].clone());
    Running {
        last: Marker::find("[canary start path=/ from=/ to=/ steps=100 step=0]")
            .expect("a valid marker"),
        last_version: String::new(),
        start_version: String::new(),
        started_by: String::new(),
        original: original.clone(),
        written: original,
        edited: None,
        current_version: String::new(),
        current: dtab.to_vec(),
    }
}

/// Runs the gate with `sh -c`, telling it the step in force.
async fn run_gate(
    gate: &str,
    ns: &str,
    plan: &Plan,
    step: usize,
    next: u8,
) -> Result<std::process::ExitStatus, Error> {
    tokio::process::Command::new("sh")
        .arg("-c")
        .arg(gate)
        .env("NAMERCTL_CANARY_NAMESPACE", ns)
        .env("NAMERCTL_CANARY_PATH", &plan.path)
        .env("NAMERCTL_CANARY_STEP", step.to_string())
        .env("NAMERCTL_CANARY_PERCENT", plan.steps[step - 1].to_string())
        .env("NAMERCTL_CANARY_NEXT_PERCENT", next.to_string())
        .status()
        .await
        .map_err(|e| Error::CanaryGate {
            gate: gate.to_string(),
            reason: e.to_string(),
        })
}

fn say(out: &mut dyn Write, text: &str) -> Result<(), Error> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(Error::Output)
}
