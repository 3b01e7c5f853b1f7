//! Runs one validated command: resolve namerd's location, read input, call
//! namerd, print. Results go to `out`, warnings to `err`; errors are
//! returned for `main` to print and map to an exit code.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::canary;
use crate::cli::{Action, Against, Canary, Invocation};
use crate::client::{NamerdClient, Payload};
use crate::config::{self, Sources};
use crate::dentries;
use crate::error::Error;
use crate::format;
use crate::input::{self, CONTENT_TYPE_JSON};
use crate::token::Token;

/// What namerctl reads from its process environment, passed in so that
/// nothing below `main` reads globals.
#[derive(Clone, Debug)]
pub struct Environment {
    /// `NAMERCTL_BASE_URL`.
    pub base_url: Option<String>,
    /// Where the search for `.namerctl.*` starts.
    pub cwd: PathBuf,
}

impl Environment {
    pub fn from_process() -> Self {
        Environment {
            base_url: std::env::var("NAMERCTL_BASE_URL").ok(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        }
    }
}

/// Runs the command; the exit status on success (0, or 1 for a `dtab
/// diff` that found differences).
pub async fn run(
    invocation: Invocation,
    env: &Environment,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    let (base, origin) = config::resolve_base_url(&Sources {
        flag: invocation.base_url.as_deref(),
        env: env.base_url.as_deref(),
        config_file: invocation.config.as_deref(),
        cwd: &env.cwd,
    })?;
    if invocation.verbose {
        writeln!(err, "namerd at {base} ({origin})").map_err(Error::Output)?;
    }
    let token = invocation
        .token_file
        .as_deref()
        .map(Token::read)
        .transpose()?;
    let client = NamerdClient::new(
        base,
        Duration::from_secs(invocation.timeout_secs),
        &invocation.tls,
    )?
    .with_token(token);
    let json = invocation.json;
    let mut status = 0;

    let text = match invocation.action {
        Action::List => {
            let names = client.list().await?;
            if json {
                format::json_line(&names)
            } else {
                format::names(&names)
            }
        }
        Action::Get { name, pretty } => {
            let fetched = client.get(&name).await?;
            if json {
                format::versioned_json(&fetched.version, &fetched.dtab)
            } else if pretty {
                format::pretty(&fetched.version, &fetched.dtab)
            } else {
                format::one_line(&fetched.dtab)
            }
        }
        Action::Create { name, source } => {
            let input = input::read(&source)?;
            let payload = Payload {
                content_type: input.content_type,
                body: input.body,
            };
            client.create(&name, payload).await?;
            format!("Created {name}\n")
        }
        Action::Update {
            name,
            source,
            dry_run: true,
            ..
        } => {
            let input = input::read(&source)?;
            let payload = Payload {
                content_type: input.content_type,
                body: input.body,
            };
            let answer = client.dry_run(&name, payload).await?;
            if json {
                format::json_line(&answer)
            } else {
                crate::dry_run::render(&name, &answer)
            }
        }
        Action::Update {
            name,
            source,
            version,
            force,
            dry_run: false,
        } => {
            let input = input::read(&source)?;
            let precondition = input::precondition(
                &name,
                version.as_deref(),
                input.version.as_deref(),
                force,
                &source.describe(),
            )?;
            if let Some(warning) = &precondition.warning {
                writeln!(err, "{warning}").map_err(Error::Output)?;
            }
            let payload = Payload {
                content_type: input.content_type,
                body: input.body,
            };
            client
                .update(&name, payload, precondition.if_match.as_deref())
                .await?;
            format!("Updated {name}\n")
        }
        Action::Delete { name } => {
            client.delete(&name).await?;
            format!("Deleted {name}\n")
        }
        Action::History { name } => {
            let (raw, entries) = client.history(&name).await?;
            if json {
                format!("{}\n", String::from_utf8_lossy(&raw).trim_end())
            } else {
                format::history_table(&entries)
            }
        }
        Action::Rollback { name, version } => {
            let new_version = rollback(&client, &name, &version).await?;
            format!("Rolled back {name} to version {version} (new version {new_version})\n")
        }
        Action::Diff { name, against } => {
            let (text, differ) = diff(&client, &name, &against).await?;
            status = u8::from(differ) * crate::error::EXIT_DIFFERENT;
            text
        }
        Action::Explain { name, path, dtab } => {
            let tree = client.delegate(&name, &path, &dtab).await?;
            if json {
                format::json_line(&tree)
            } else {
                crate::explain::render(&tree)
            }
        }
        Action::Canary(canary) => match canary {
            Canary::Start { name, plan } => {
                canary::run::start(&client, &name, &plan, out).await?;
                String::new()
            }
            Canary::Status { name, path } => {
                canary::run::status(&client, &name, path.as_deref()).await?
            }
            Canary::Abort { name, path } => {
                canary::run::abort(&client, &name, path.as_deref()).await?
            }
            Canary::Promote { name, path } => {
                canary::run::promote(&client, &name, path.as_deref()).await?
            }
        },
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    out.flush().map_err(Error::Output)?;
    Ok(status)
}

/// The diff's text and whether the sides differ.
async fn diff(
    client: &NamerdClient,
    name: &str,
    against: &Against,
) -> Result<(String, bool), Error> {
    let (old_name, old, new_name, new) = match against {
        Against::File(source) => {
            let fetched = client.get(name).await?;
            let what = format!("dtab {name} (version {})", fetched.version);
            let old = dentries::stored(&fetched.dtab, !fetched.version.is_empty(), &what)?;
            let input = input::read(source)?;
            let new = dentries::file(&input, &source.describe())?;
            (what, old, source.describe(), new)
        }
        Against::Versions(a, b) => {
            let side = |v: String| async move {
                let dtab = client.version(name, &v).await?;
                let what = format!("dtab {name} (version {v})");
                Ok::<_, Error>((dentries::stored(&dtab, true, &what)?, what))
            };
            let (old, old_name) = side(a.clone()).await?;
            let (new, new_name) = side(b.clone()).await?;
            (old_name, old, new_name, new)
        }
    };
    let changes = crate::diff::diff(&old, &new);
    Ok((
        crate::diff::render(&old_name, &new_name, &changes),
        !changes.is_empty(),
    ))
}

/// Writes the dtab of `version` back, compare-and-set against the version
/// current when we looked, so a concurrent change is a conflict rather than
/// lost. If the dtab was deleted since, it is created again (which only
/// succeeds if nobody else did). Returns the new version.
async fn rollback(client: &NamerdClient, name: &str, version: &str) -> Result<String, Error> {
    let dtab = client.version(name, version).await?;
    let payload = Payload {
        content_type: CONTENT_TYPE_JSON,
        body: serde_json::to_vec(&dtab)
            .expect("dentries serialize")
            .into(),
    };
    let written = match client.current_version(name).await? {
        Some(current) => client.update(name, payload, Some(&current)).await?,
        None => {
            client.create(name, payload).await?;
            None
        }
    };
    match written {
        Some(new_version) => Ok(new_version),
        None => Ok(client
            .current_version(name)
            .await?
            .unwrap_or_else(|| "unknown".to_string())),
    }
}
