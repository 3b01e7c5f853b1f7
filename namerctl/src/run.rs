//! Runs one validated command: resolve namerd's location, read input, call
//! namerd, print. Results go to `out`, warnings to `err`; errors are
//! returned for `main` to print and map to an exit code.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Action, Invocation};
use crate::client::{NamerdClient, Payload};
use crate::config::{self, Sources};
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

pub async fn run(
    invocation: Invocation,
    env: &Environment,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Error> {
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
            version,
            force,
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
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    out.flush().map_err(Error::Output)
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
