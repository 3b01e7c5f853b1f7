//! The canary's state, read from namerd alone so that any operator on any
//! machine sees it and can abort it.
//!
//! namerd re-renders the dtabs it stores (comments are not kept, and
//! Linkerd's JSON dtab format has no place for them), so the state lives
//! in two things every storage backend keeps: the canary's own dentry,
//! which is ordinary routing (`/host/world => 95*/srv/world-v1 &
//! 5*/srv/world-v2`), and namerd's history, where each of the canary's
//! writes carries a marker in its declared author (`l5d-author`):
//! `[canary step path=/host/world from=/srv/world-v1 to=/srv/world-v2
//! steps=1,5,25,50,100 step=2]`. The version before the canary's `start`
//! holds the dentry an abort restores. The canary's dentry is the last
//! dentry whose prefix is the path (the one that wins); a path without one
//! gets one appended, which an abort removes. Pure: [`run`] talks to
//! namerd.

use crate::api::{Dentry, HistoryEntry};

pub mod run;

/// What one of the canary's writes did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The first step.
    Start,
    Step,
    /// 100% to `to`, the plain dentry: the canary is over.
    Promote,
    /// The dentry as before the canary: the canary is over.
    Abort,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Step => "step",
            Action::Promote => "promote",
            Action::Abort => "abort",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        [Action::Start, Action::Step, Action::Promote, Action::Abort]
            .into_iter()
            .find(|a| a.as_str() == s)
    }

    pub fn is_over(self) -> bool {
        matches!(self, Action::Promote | Action::Abort)
    }
}

/// The marker of one write, as recorded in namerd's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub action: Action,
    pub path: String,
    pub from: String,
    pub to: String,
    /// Percentages to `to`, increasing, the last 100.
    pub steps: Vec<u8>,
    /// 1-based index of the step in force after this write (0 after an
    /// abort before any step... never: an abort keeps the last step's).
    pub step: usize,
}

impl Marker {
    pub fn render(&self) -> String {
        let steps: Vec<String> = self.steps.iter().map(u8::to_string).collect();
        format!(
            "[canary {} path={} from={} to={} steps={} step={}]",
            self.action.as_str(),
            self.path,
            self.from,
            self.to,
            steps.join(","),
            self.step
        )
    }

    /// The marker in a history author (`127.0.0.1:4000 (l5d-author: alice
    /// [canary ...])`), if there is one. Paths have neither spaces nor
    /// brackets, so the marker reads back unambiguously.
    pub fn find(author: &str) -> Option<Marker> {
        let start = author.find("[canary ")?;
        let body = &author[start + "[canary ".len()..];
        let body = &body[..body.find(']')?];
        let mut words = body.split_whitespace();
        let action = Action::parse(words.next()?)?;
        let (mut path, mut from, mut to, mut steps, mut step) = (None, None, None, None, None);
        for word in words {
            let (k, v) = word.split_once('=')?;
            match k {
                "path" => path = Some(v.to_string()),
                "from" => from = Some(v.to_string()),
                "to" => to = Some(v.to_string()),
                "steps" => steps = v.split(',').map(|s| s.parse().ok()).collect(),
                "step" => step = v.parse().ok(),
                _ => {}
            }
        }
        Some(Marker {
            action,
            path: path?,
            from: from?,
            to: to?,
            steps: steps?,
            step: step?,
        })
    }

    /// The percentage to `to` in force after this write.
    pub fn percent(&self) -> u8 {
        match self.action {
            Action::Promote => 100,
            _ => self
                .steps
                .get(self.step.wrapping_sub(1))
                .copied()
                .unwrap_or(0),
        }
    }
}

/// The destination of the canary's dentry at `percent` to `to`: the
/// weighted union, or `to` alone at 100.
pub fn destination(from: &str, to: &str, percent: u8) -> String {
    if percent >= 100 {
        to.to_string()
    } else {
        format!("{} * {from} & {percent} * {to}", 100 - percent)
    }
}

/// The index of the dentry that wins for `path`: the last with that prefix.
pub fn dentry_index(dtab: &[Dentry], path: &str) -> Option<usize> {
    dtab.iter().rposition(|d| d.prefix == path)
}

/// `dtab` with the dentry for `path` replaced by `dentry` (appended when
/// there is none; removed when `dentry` is `None`). Every other dentry is
/// kept as it is.
pub fn with_dentry(dtab: &[Dentry], path: &str, dentry: Option<Dentry>) -> Vec<Dentry> {
    let mut out = dtab.to_vec();
    match (dentry_index(dtab, path), dentry) {
        (Some(i), Some(d)) => out[i] = d,
        (Some(i), None) => {
            out.remove(i);
        }
        (None, Some(d)) => out.push(d),
        (None, None) => {}
    }
    out
}

/// A canary on one path, as namerd's history shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// The history has no canary on this path.
    None,
    /// The last canary ended (`Promote` or `Abort`) with this write.
    Over {
        last: Marker,
        version: String,
        author: String,
    },
    Running(Box<Running>),
}

/// A canary that has not ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Running {
    /// The canary's latest write.
    pub last: Marker,
    pub last_version: String,
    pub start_version: String,
    pub started_by: String,
    /// The dentry for the path before the canary (`None`: there was none).
    pub original: Option<Dentry>,
    /// The dentry the canary last wrote.
    pub written: Option<Dentry>,
    /// A write by someone else since that changed the canary's dentry.
    pub edited: Option<Edit>,
    /// The current version and dtab.
    pub current_version: String,
    pub current: Vec<Dentry>,
}

/// Someone else's change of the canary's dentry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub version: String,
    pub author: String,
    /// The dentry now (`None`: removed).
    pub now: Option<Dentry>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the start of the canary on {path} is no longer in namerd's history (it keeps a \
         bounded number of versions); restore the dentry by hand"
    )]
    StartGone { path: String },
    #[error("dtab {ns} has been deleted")]
    Deleted { ns: String },
}

fn dentry_of(entry: &HistoryEntry, path: &str) -> Option<Dentry> {
    let dtab = entry.dtab.as_deref()?;
    dentry_index(dtab, path).map(|i| dtab[i].clone())
}

/// The state of the canary on `path` from the history (oldest first).
pub fn state(ns: &str, entries: &[HistoryEntry], path: &str) -> Result<State, StateError> {
    let author = |e: &HistoryEntry| e.author.clone().unwrap_or_else(|| "-".into());
    let marked = |e: &HistoryEntry| Marker::find(e.author.as_deref()?).filter(|m| m.path == path);
    let Some((j, last)) = entries
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, e)| marked(e).map(|m| (i, m)))
    else {
        return Ok(State::None);
    };
    if last.action.is_over() {
        return Ok(State::Over {
            last,
            version: entries[j].version.clone(),
            author: author(&entries[j]),
        });
    }
    let start = entries[..=j]
        .iter()
        .rposition(|e| marked(e).is_some_and(|m| m.action == Action::Start));
    let Some(s) = start.filter(|&s| s > 0) else {
        return Err(StateError::StartGone { path: path.into() });
    };
    let current = entries.last().expect("j is an entry");
    let Some(current_dtab) = current.dtab.clone() else {
        return Err(StateError::Deleted { ns: ns.into() });
    };
    let written = dentry_of(&entries[j], path);
    let edited = entries[j + 1..]
        .iter()
        .find(|e| dentry_of(e, path) != written)
        .map(|e| Edit {
            version: e.version.clone(),
            author: author(e),
            now: dentry_of(e, path),
        });
    Ok(State::Running(Box::new(Running {
        last,
        last_version: entries[j].version.clone(),
        start_version: entries[s].version.clone(),
        started_by: author(&entries[s]),
        original: dentry_of(&entries[s - 1], path),
        written,
        edited,
        current_version: current.version.clone(),
        current: current_dtab,
    })))
}

/// The paths with a canary marker in the history, in first-seen order.
pub fn paths(entries: &[HistoryEntry]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in entries
        .iter()
        .filter_map(|e| Marker::find(e.author.as_deref()?))
    {
        if !out.contains(&m.path) {
            out.push(m.path);
        }
    }
    out
}

/// `canary status` for one path.
pub fn status_text(path: &str, st: &State) -> String {
    match st {
        State::None => format!("{path}: no canary\n"),
        State::Over {
            last,
            version,
            author,
        } => {
            let how = if last.action == Action::Abort {
                "aborted"
            } else {
                "promoted"
            };
            format!("{path}: {how} in version {version} by {author}\n")
        }
        State::Running(r) => {
            let m = &r.last;
            let pct = m.percent();
            let mut out = format!(
                "{path}: step {}/{} ({}% {} {}% {}), started in version {} by {}\n",
                m.step,
                m.steps.len(),
                100 - u32::from(pct),
                m.from,
                pct,
                m.to,
                r.start_version,
                r.started_by,
            );
            if let Some(d) = &r.written {
                out.push_str(&format!("  dentry: {} => {}\n", d.prefix, d.dst));
            }
            if let Some(e) = &r.edited {
                out.push_str(&format!(
                    "  edited by {} in version {}: the canary cannot continue or abort\n",
                    e.author, e.version
                ));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests;
