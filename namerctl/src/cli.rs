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
    },
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

// === impl Cli ===

impl Cli {
    /// Checks the positional arguments; a failure is a clap usage error
    /// naming the subcommand.
    pub fn invocation(self) -> Result<Invocation, clap::Error> {
        let TopCommand::Dtab(dtab) = self.command;
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
                args,
            } => {
                let [name, file] = expect(&args, "update", "update requires a name and file path")?;
                Action::Update {
                    name,
                    source: source("update", &file)?,
                    version,
                    force,
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
        Ok(Invocation {
            base_url: self.base_url,
            tls: TlsFiles {
                ca_cert: self.ca_cert,
                cert: self.cert,
                key: self.key,
            },
            config: self.config,
            timeout_secs: self.timeout,
            json: dtab.json,
            verbose: self.verbose,
            token_file: self.token_file,
            action,
        })
    }
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
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation, clap::Error> {
        let argv = std::iter::once("namerctl").chain(args.iter().copied());
        Cli::try_parse_from(argv)?.invocation()
    }

    #[test]
    fn clap_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn commands_and_aliases() {
        let file = || Source::File("f.dtab".into());
        let cases: Vec<(&[&str], Action)> = vec![
            (&["dtab", "list"], Action::List),
            (&["dtab", "ls"], Action::List),
            (
                &["dtab", "get", "internal"],
                Action::Get {
                    name: "internal".into(),
                    pretty: true,
                },
            ),
            (
                &["dtab", "cat", "internal", "--pretty=false"],
                Action::Get {
                    name: "internal".into(),
                    pretty: false,
                },
            ),
            (
                &["dtab", "get", "--pretty", "internal"],
                Action::Get {
                    name: "internal".into(),
                    pretty: true,
                },
            ),
            (
                &["dtab", "new", "internal", "-"],
                Action::Create {
                    name: "internal".into(),
                    source: Source::Stdin,
                },
            ),
            (
                &["dtab", "create", "internal", "f.dtab"],
                Action::Create {
                    name: "internal".into(),
                    source: file(),
                },
            ),
            (
                &[
                    "dtab",
                    "up",
                    "internal",
                    "f.dtab",
                    "--version",
                    "AAAAAAAAAAE=",
                ],
                Action::Update {
                    name: "internal".into(),
                    source: file(),
                    version: Some("AAAAAAAAAAE=".into()),
                    force: false,
                },
            ),
            (
                &["dtab", "update", "--force", "internal", "f.dtab"],
                Action::Update {
                    name: "internal".into(),
                    source: file(),
                    version: None,
                    force: true,
                },
            ),
            (
                &["dtab", "rm", "internal"],
                Action::Delete {
                    name: "internal".into(),
                },
            ),
            (
                &["dtab", "del", "internal"],
                Action::Delete {
                    name: "internal".into(),
                },
            ),
            (
                &["dtab", "delete", "internal"],
                Action::Delete {
                    name: "internal".into(),
                },
            ),
            (
                &["dtab", "history", "internal"],
                Action::History {
                    name: "internal".into(),
                },
            ),
            (
                &["dtab", "rollback", "internal", "AAAAAAAAAAE="],
                Action::Rollback {
                    name: "internal".into(),
                    version: "AAAAAAAAAAE=".into(),
                },
            ),
        ];
        for (args, action) in cases {
            let got = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(got.action, action, "{args:?}");
            assert!(!got.json);
        }
    }

    #[test]
    fn global_flags() {
        let got = parse(&[
            "--base-url",
            "http://a:1",
            "dtab",
            "--json",
            "get",
            "x",
            "--config",
            "c.yaml",
            "--timeout",
            "5",
            "--token-file",
            "/run/t",
        ])
        .unwrap();
        assert_eq!(got.base_url.as_deref(), Some("http://a:1"));
        assert_eq!(got.config, Some(PathBuf::from("c.yaml")));
        assert_eq!(got.timeout_secs, 5);
        assert_eq!(got.token_file, Some(PathBuf::from("/run/t")));
        assert!(got.json);
        let got = parse(&["dtab", "ls", "--json=true", "--base-url=http://b"]).unwrap();
        assert!(got.json);
        assert_eq!(got.base_url.as_deref(), Some("http://b"));
        assert!(!parse(&["dtab", "ls", "--json=false"]).unwrap().json);
    }

    #[test]
    fn usage_errors_use_the_go_messages() {
        let cases: &[(&[&str], &str)] = &[
            (&["dtab", "list", "x"], "list does not take arguments"),
            (&["dtab", "get"], "get requires a name argument"),
            (&["dtab", "get", "a", "b"], "get requires a name argument"),
            (
                &["dtab", "create", "a"],
                "create requires a name and file path",
            ),
            (
                &["dtab", "update", "a"],
                "update requires a name and file path",
            ),
            (&["dtab", "delete"], "delete requires one argument"),
            (&["dtab", "rm", "a", "b"], "delete requires one argument"),
            (&["dtab", "create", "a", ""], "empty dtab path"),
            (&["dtab", "update", "a", ""], "empty dtab path"),
            (&["dtab", "get", ""], "empty dtab name"),
            (&["dtab", "history"], "history requires a name argument"),
            (
                &["dtab", "rollback", "a"],
                "rollback requires a name and a version",
            ),
        ];
        for (args, message) in cases {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
            let text = err.to_string();
            assert!(text.contains(message), "{args:?}: {text}");
        }
        let err = parse(&["dtab", "update", "a", "f", "--force", "--version", "v"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    }
}
