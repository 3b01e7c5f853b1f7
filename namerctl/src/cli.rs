//! The command line: the Go namerctl's commands, aliases and flags in clap,
//! and their validation into an [`Invocation`].
//!
//! Positional arguments are collected loosely and counted here, not by
//! clap, so that a wrong count gives the Go tool's messages (`get requires a
//! name argument`, ...), reported as clap usage errors (exit 2).

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};

use crate::input::Source;

#[derive(Debug, Parser)]
#[command(
    name = "namerctl",
    version,
    about = "Inspect and change namerd dtabs",
    long_about = "Inspect and change namerd dtabs.\n\n\
        namerd is found with --base-url, else the NAMERCTL_BASE_URL environment variable, \
        else the base-url key of --config or of the first .namerctl.yaml, .namerctl.yml or \
        .namerctl.json in the current directory or a parent, else namerd's default \
        address, http://127.0.0.1:4180 (-v says which was used)."
)]
pub struct Cli {
    #[arg(
        long = "base-url",
        global = true,
        value_name = "URL",
        help = "namerd location (e.g. http://namerd.example.com:4180)"
    )]
    pub base_url: Option<String>,

    /// config file (default: .namerctl.yaml, .namerctl.yml or .namerctl.json
    /// in the current directory or a parent)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// CA certificate (PEM) to verify an https:// namerd with
    #[arg(
        long = "ca-cert",
        global = true,
        value_name = "FILE",
        env = "NAMERCTL_CA_CERT"
    )]
    pub ca_cert: Option<PathBuf>,

    /// client certificate (PEM) to present to an https:// namerd
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "NAMERCTL_CERT",
        requires = "key"
    )]
    pub cert: Option<PathBuf>,

    /// private key (PEM) of --cert
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "NAMERCTL_KEY",
        requires = "cert"
    )]
    pub key: Option<PathBuf>,

    /// seconds to wait for each answer from namerd
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,

    /// say on stderr which namerd is used and where its address came from
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// a file holding the bearer token sent to namerd (Authorization:
    /// Bearer), for a namerd that authenticates its clients
    #[arg(
        long = "token-file",
        global = true,
        value_name = "FILE",
        env = "NAMERCTL_TOKEN_FILE"
    )]
    pub token_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: TopCommand,
}

#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Control namerd's dtabs
    Dtab(DtabArgs),
    /// Shift a path's traffic step by step, with compare-and-set, and back
    Canary(CanaryArgs),
}

#[derive(Debug, Args)]
pub struct CanaryArgs {
    #[command(subcommand)]
    pub command: CanaryCommand,
}

#[derive(Debug, Subcommand)]
pub enum CanaryCommand {
    /// Move --path from --from to --to over --steps, waiting --interval and
    /// asking --gate between steps; a failing gate aborts (exit 6)
    #[command(
        override_usage = "namerctl canary start <name> --path <path> --from <dst> --to <dst> \
        [--steps 1,5,25,50,100] [--interval 60s] [--gate CMD]"
    )]
    Start {
        name: String,
        /// the dentry prefix to shift (e.g. /host/world)
        #[arg(long)]
        path: String,
        /// where the path routes now (e.g. /srv/world-v1)
        #[arg(long)]
        from: String,
        /// where it should route (e.g. /srv/world-v2)
        #[arg(long)]
        to: String,
        /// percentages sent to --to, increasing, ending with 100
        #[arg(long, value_delimiter = ',', default_value = "1,5,25,50,100")]
        steps: Vec<u8>,
        /// how long each step holds before the gate is asked (e.g. 60s, 100ms)
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// shell command run before each next step: exit 0 continues, else abort
        #[arg(long, value_name = "CMD")]
        gate: Option<String>,
    },
    /// Show the step and weights of the namespace's canaries
    Status {
        name: String,
        #[arg(long)]
        path: Option<String>,
    },
    /// Restore the dentry as it was before the canary (refused if someone
    /// else changed the canary's dentry)
    Abort {
        name: String,
        #[arg(long)]
        path: Option<String>,
    },
    /// Jump to 100%: the plain dentry to --to
    Promote {
        name: String,
        #[arg(long)]
        path: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct DtabArgs {
    /// input/output in json instead of text
    #[arg(
        long,
        global = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value_t = false,
        default_missing_value = "true",
        value_name = "BOOL",
        hide_default_value = true,
        hide_possible_values = true
    )]
    pub json: bool,

    #[command(subcommand)]
    pub command: DtabCommand,
}

#[derive(Debug, Subcommand)]
pub enum DtabCommand {
    /// List dtab names
    #[command(visible_alias = "ls", override_usage = "namerctl dtab list")]
    List {
        #[arg(hide = true)]
        args: Vec<String>,
    },

    /// Print a dtab with its version
    #[command(
        visible_alias = "cat",
        override_usage = "namerctl dtab get <name> [OPTIONS]"
    )]
    Get {
        /// align the dentries, one per line, after a `# version` line (default true;
        /// --pretty=false prints one line without the version)
        #[arg(
            long,
            action = ArgAction::Set,
            num_args = 0..=1,
            require_equals = true,
            default_value_t = true,
            default_missing_value = "true",
            value_name = "BOOL",
            hide_default_value = true,
            hide_possible_values = true
        )]
        pretty: bool,
        #[arg(hide = true)]
        args: Vec<String>,
    },

    /// Create a dtab that does not exist yet (FILE may be - for stdin)
    #[command(
        visible_alias = "new",
        override_usage = "namerctl dtab create <name> <file> [OPTIONS]"
    )]
    Create {
        #[arg(hide = true)]
        args: Vec<String>,
    },

    /// Replace a dtab if it is still at the expected version (FILE may be - for stdin)
    #[command(
        visible_alias = "up",
        override_usage = "namerctl dtab update <name> <file> [--version <etag> | --force] [OPTIONS]",
        long_about = "Replace a dtab if it is still at the expected version.\n\n\
            The expected version is --version, else the \"version\" of a JSON file, else a first \
            line \"# version <etag>\" of a text file (as `dtab get` prints it). Without one the \
            update is refused unless --force is given. A version conflict exits with status 3."
    )]
    Update {
        /// only perform the update if the current version matches
        #[arg(long, value_name = "ETAG", conflicts_with = "force")]
        version: Option<String>,
        /// write without a version check, overwriting whatever is stored
        #[arg(long)]
        force: bool,
        /// write nothing; list the names namerd streams whose bound tree
        /// would change, before and after, with their watchers
        #[arg(long = "dry-run")]
        dry_run: bool,
        #[arg(hide = true)]
        args: Vec<String>,
    },

    /// Compare a dtab with a file (or two versions, --version A..B),
    /// dentry by dentry; exit 0 equal, 1 different, 2 trouble
    #[command(
        override_usage = "namerctl dtab diff <name> <file> | namerctl dtab diff <name> --version A..B"
    )]
    Diff {
        /// two stored versions, A..B, instead of a file
        #[arg(long, value_name = "A..B")]
        version: Option<String>,
        #[arg(hide = true)]
        args: Vec<String>,
    },

    /// Show how a path delegates through the namespace, as a tree
    #[command(override_usage = "namerctl dtab explain <name> <path> [--dtab OVERRIDE] [--json]")]
    Explain {
        /// a dtab appended for this explanation only
        #[arg(long, value_name = "DTAB", default_value = "")]
        dtab: String,
        #[arg(hide = true)]
        args: Vec<String>,
    },

    /// Delete a dtab
    #[command(
        visible_aliases = ["del", "rm"],
        override_usage = "namerctl dtab delete <name>"
    )]
    Delete {
        #[arg(hide = true)]
        args: Vec<String>,
    },

    /// Show the committed versions of a dtab, oldest first
    #[command(override_usage = "namerctl dtab history <name> [OPTIONS]")]
    History {
        #[arg(hide = true)]
        args: Vec<String>,
    },

    /// Restore the dtab of an earlier version (compare-and-set against the current one)
    #[command(override_usage = "namerctl dtab rollback <name> <version>")]
    Rollback {
        #[arg(hide = true)]
        args: Vec<String>,
    },
}

/// A validated command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub base_url: Option<String>,
    pub tls: TlsFiles,
    pub config: Option<PathBuf>,
    pub timeout_secs: u64,
    pub json: bool,
    pub verbose: bool,
    pub token_file: Option<PathBuf>,
    pub action: Action,
}

/// The files for an `https://` namerd: the CA to verify it with, and a
/// client certificate and key to present (both or neither).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_cert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    List,
    Get {
        name: String,
        pretty: bool,
    },
    Create {
        name: String,
        source: Source,
    },
    Update {
        name: String,
        source: Source,
        version: Option<String>,
        force: bool,
        dry_run: bool,
    },
    Diff {
        name: String,
        against: Against,
    },
    Explain {
        name: String,
        path: String,
        dtab: String,
    },
    Canary(Canary),
    Delete {
        name: String,
    },
    History {
        name: String,
    },
    Rollback {
        name: String,
        version: String,
    },
}

/// What `dtab diff` compares the current dtab with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Against {
    File(Source),
    /// Two stored versions: the first is the old side.
    Versions(String, String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Canary {
    Start {
        name: String,
        plan: crate::canary::run::Plan,
    },
    Status {
        name: String,
        path: Option<String>,
    },
    Abort {
        name: String,
        path: Option<String>,
    },
    Promote {
        name: String,
        path: Option<String>,
    },
}

// === impl Cli ===

impl Cli {
    /// Checks the positional arguments; a failure is a clap usage error
    /// naming the subcommand.
    pub fn invocation(self) -> Result<Invocation, clap::Error> {
        let dtab = match self.command {
            TopCommand::Dtab(dtab) => dtab,
            TopCommand::Canary(canary) => {
                let action = Action::Canary(canary_action(canary.command)?);
                return Ok(self_invocation(
                    self.base_url,
                    self.ca_cert,
                    self.cert,
                    self.key,
                    self.config,
                    self.timeout,
                    false,
                    self.verbose,
                    self.token_file,
                    action,
                ));
            }
        };
        let action = match dtab.command {
            DtabCommand::List { args } => {
                let [] = expect(&args, "list", "list does not take arguments")?;
                Action::List
            }
            DtabCommand::Get { pretty, args } => {
                let [name] = expect(&args, "get", "get requires a name argument")?;
                Action::Get { name, pretty }
            }
            DtabCommand::Create { args } => {
                let [name, file] = expect(&args, "create", "create requires a name and file path")?;
                Action::Create {
                    name,
                    source: source("create", &file)?,
                }
            }
            DtabCommand::Update {
                version,
                force,
                dry_run,
                args,
            } => {
                let [name, file] = expect(&args, "update", "update requires a name and file path")?;
                Action::Update {
                    name,
                    source: source("update", &file)?,
                    version,
                    force,
                    dry_run,
                }
            }
            DtabCommand::Diff { version, args } => match version {
                Some(range) => {
                    let [name] = expect(
                        &args,
                        "diff",
                        "diff requires a name and a file, or a name and --version A..B",
                    )?;
                    let Some((a, b)) = range.split_once("..") else {
                        return Err(usage_error(
                            "diff",
                            ErrorKind::InvalidValue,
                            "--version takes two versions, A..B",
                        ));
                    };
                    Action::Diff {
                        name,
                        against: Against::Versions(a.to_string(), b.to_string()),
                    }
                }
                None => {
                    let [name, file] = expect(
                        &args,
                        "diff",
                        "diff requires a name and a file, or a name and --version A..B",
                    )?;
                    Action::Diff {
                        name,
                        against: Against::File(source("diff", &file)?),
                    }
                }
            },
            DtabCommand::Explain { dtab: local, args } => {
                let [name, path] = expect(&args, "explain", "explain requires a name and a path")?;
                Action::Explain {
                    name,
                    path,
                    dtab: local,
                }
            }
            DtabCommand::Delete { args } => {
                let [name] = expect(&args, "delete", "delete requires one argument")?;
                Action::Delete { name }
            }
            DtabCommand::History { args } => {
                let [name] = expect(&args, "history", "history requires a name argument")?;
                Action::History { name }
            }
            DtabCommand::Rollback { args } => {
                let [name, version] =
                    expect(&args, "rollback", "rollback requires a name and a version")?;
                Action::Rollback { name, version }
            }
        };
        Ok(self_invocation(
            self.base_url,
            self.ca_cert,
            self.cert,
            self.key,
            self.config,
            self.timeout,
            dtab.json,
            self.verbose,
            self.token_file,
            action,
        ))
    }
}

#[expect(clippy::too_many_arguments, reason = "the fields of Cli, moved once")]
fn self_invocation(
    base_url: Option<String>,
    ca_cert: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    config: Option<PathBuf>,
    timeout_secs: u64,
    json: bool,
    verbose: bool,
    token_file: Option<PathBuf>,
    action: Action,
) -> Invocation {
    Invocation {
        base_url,
        tls: TlsFiles { ca_cert, cert, key },
        config,
        timeout_secs,
        json,
        verbose,
        token_file,
        action,
    }
}

/// The canary's arguments, checked: paths that parse, steps that
/// increase to 100.
fn canary_action(command: CanaryCommand) -> Result<Canary, clap::Error> {
    let check_path = |sub: &str, p: &str| -> Result<String, clap::Error> {
        l5d_dtab::Path::read(p)
            .map(|p| p.show())
            .map_err(|e| canary_usage(sub, &format!("invalid path {p:?}: {e}")))
    };
    Ok(match command {
        CanaryCommand::Start {
            name,
            path,
            from,
            to,
            steps,
            interval,
            gate,
        } => {
            let increasing = steps.windows(2).all(|w| w[0] < w[1]);
            if steps.is_empty() || !increasing || steps[0] == 0 || steps.last() != Some(&100) {
                return Err(canary_usage(
                    "start",
                    "--steps must increase from above 0 and end with 100, e.g. 1,5,25,50,100",
                ));
            }
            Canary::Start {
                name,
                plan: crate::canary::run::Plan {
                    path: check_path("start", &path)?,
                    from: check_path("start", &from)?,
                    to: check_path("start", &to)?,
                    steps,
                    interval,
                    gate,
                },
            }
        }
        CanaryCommand::Status { name, path } => Canary::Status {
            name,
            path: path.map(|p| check_path("status", &p)).transpose()?,
        },
        CanaryCommand::Abort { name, path } => Canary::Abort {
            name,
            path: path.map(|p| check_path("abort", &p)).transpose()?,
        },
        CanaryCommand::Promote { name, path } => Canary::Promote {
            name,
            path: path.map(|p| check_path("promote", &p)).transpose()?,
        },
    })
}

fn canary_usage(subcommand: &str, message: &str) -> clap::Error {
    let mut root = Cli::command();
    root.build();
    let mut command = root
        .find_subcommand_mut("canary")
        .and_then(|c| c.find_subcommand_mut(subcommand))
        .expect("known subcommand")
        .clone();
    command.error(ErrorKind::InvalidValue, message)
}

/// Exactly `N` arguments, none of them an empty name.
fn expect<const N: usize>(
    args: &[String],
    subcommand: &str,
    message: &str,
) -> Result<[String; N], clap::Error> {
    let array: [String; N] = args
        .to_vec()
        .try_into()
        .map_err(|_| usage_error(subcommand, ErrorKind::WrongNumberOfValues, message))?;
    if N > 0 && array[0].is_empty() {
        return Err(usage_error(
            subcommand,
            ErrorKind::InvalidValue,
            "empty dtab name",
        ));
    }
    Ok(array)
}

fn source(subcommand: &str, path: &str) -> Result<Source, clap::Error> {
    if path.is_empty() {
        return Err(usage_error(
            subcommand,
            ErrorKind::InvalidValue,
            "empty dtab path",
        ));
    }
    Ok(Source::from_arg(path))
}

/// A usage error rendered with the subcommand's usage line.
fn usage_error(subcommand: &str, kind: ErrorKind, message: &str) -> clap::Error {
    let mut root = Cli::command();
    root.build();
    let mut command = root
        .find_subcommand_mut("dtab")
        .and_then(|dtab| dtab.find_subcommand_mut(subcommand))
        .expect("known subcommand")
        .clone();
    command.error(kind, message)
}

#[cfg(test)]
mod tests;
