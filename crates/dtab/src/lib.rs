//! The naming core of the mesh: Finagle's naming model as Linkerd 1.x uses it.
//!
//! A request is identified as a logical [`Path`] (`/svc/world`). A [`Dtab`]
//! rewrites it step by step (`/svc => /host; /host/world => /srv/world-v1`),
//! each step producing a [`NameTree`] of alternatives and weighted unions,
//! until configured namers or the global `/$` namer bind it to concrete ids
//! ([`Bound`]). The [`Binder`] does that walk; [`Binder::delegate`] records it
//! as a [`DelegateTree`] for operators. A bound id resolves to an [`Addr`]
//! (a set of [`Endpoint`]s, or why there is none), and a request goes to
//! one leaf of the bound tree chosen by [`NameTree::pick`], the one weighted
//! choice both namerd and the proxy use.
//!
//! This crate is pure: no I/O, no async runtime, no serde, no dependencies.
//! Service discovery enters through the [`Namer`] trait, which answers with the
//! *current* state of a path (possibly [`Activity::Pending`]); the caller owns
//! watching and calls the binder again when an input changes.
//!
//! Semantics and error messages follow Finagle 21.4.0 and Linkerd 1.7 as
//! written down in the project's naming specification. Where that
//! specification leaves a choice open, this crate decides as follows:
//!
//! * Weights print as the JVM's `%.2f` does (shortest decimal, rounded half
//!   up, always with `.`), so `read(show(t))` keeps weights to two decimals.
//! * The parser sees Unicode scalar values, not UTF-16 units: an error marker
//!   wraps a whole character even outside the Basic Multilingual Plane, and
//!   only BMP decimal digits count as weight digits (as `Character.isDigit`
//!   on a `char` does). Such digits then fail as `For input string: "..."`.
//! * A weight too large for a double (which the JVM reads as `Infinity`,
//!   then shows as text it cannot parse) fails as `For input string: "..."`.
//! * Parentheses nest at most 100 deep ([`MAX_NESTING`]), where the JVM
//!   would overflow its stack.
//! * One binding or delegation makes at most [`DEFAULT_MAX_LOOKUPS`] lookups
//!   (configurable), beyond the depth limit: `/a => /a & /a` would otherwise
//!   make 2^100 of them, and dtabs arrive in request headers.
//! * An exception in one branch of an alternation fails the whole binding
//!   (no fallthrough), as in Finagle; the delegation trace records it and
//!   goes on.
//! * The rewriting namers (`io.buoyant.hostportPfx`, `...domainToPathPfx`,
//!   ...) answer `~` where Linkerd would build a path with an empty label
//!   (an empty host, `a..b`).
//! * `/$/inet` ports are checked as Java `int`s; whether the port is in range
//!   is for the resolver, which fails the address, not the binding.

mod addr;
mod bind;
mod delegate;
mod dentry;
mod dtab;
pub mod global;
mod name;
mod parse;
mod path;
mod pick;
mod tree;

pub use addr::{Addr, AddrSet, Endpoint};
pub use bind::{
    Binder, DEFAULT_MAX_DEPTH, DEFAULT_MAX_LOOKUPS, MAX_RECURSION, Namer, NamerSet, NoNamers,
};
pub use delegate::{DelegateNode, DelegateTree, MAX_DELEGATE_DEPTH, Transformation};
pub use dentry::{Dentry, Prefix, PrefixElem};
pub use dtab::{Dtab, request_local_dtab};
pub use name::{Activity, AsName, Bound, Name, NameError, NameRef};
pub use parse::{MAX_NESTING, ParseError};
pub use path::{EmptyLabel, Labels, Path, PathBuilder};
pub use pick::union_shares;
pub use tree::{NameTree, Weighted};
