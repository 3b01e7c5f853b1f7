//! Request-local dtab overrides (`l5d-dtab`, `l5d-ctx-dtab`, `dtab-local`):
//! reading them from a request, and deciding what they may do.
//!
//! An override is a debugging feature: it may rewrite a name to another
//! name, or to a name that service discovery resolves (`/#/...`, which the
//! operator registered), but by default never to an address the client
//! chose. A dentry with a `/$/` path anywhere in its destination (`/$/inet`,
//! `/$/fixedinet`, `/$/io.buoyant.rinet`, the `hostportPfx` and
//! `porthostPfx` rewriters, any `/$/` namer) is refused, naming the header
//! and the dentry, unless the server allows it (`allowOverrideToAddresses`).
//! Without this check, any client of a trusting server could reach any
//! host and port the proxy can: namerd's admin and dtab API included.
//!
//! Servers with `clearContext` never get here: they strip the headers
//! first ([`crate::headers::clear_context`]).
//!
//! A leaf like [`crate::headers`]: it depends on the header names only, so
//! the error classification ([`crate::error`]) can use its [`BadDtab`].

use std::sync::Arc;

use http::header::HeaderMap;
use l5d_dtab::{Dentry, Dtab, Path, Prefix};

use crate::headers::{DTAB_LOCAL, L5D_CTX_DTAB, L5D_DTAB};

/// A request-local dtab header the proxy will not use; the request is the
/// client's mistake (400).
#[derive(Debug, thiserror::Error)]
pub enum BadDtab {
    /// The value does not parse.
    #[error("Invalid dtab in {header}: {message}")]
    Malformed {
        header: &'static str,
        message: String,
    },
    /// A dentry sends requests to an address this server does not allow.
    #[error(
        "Refused {header} dentry {dentry}: a dtab override may not name an address (a /$/ path) on this server; allowOverrideToAddresses allows it"
    )]
    ToAddress {
        header: &'static str,
        dentry: String,
    },
}

/// Which address destinations (`/$/...` paths) a server lets a request's
/// override name (`allowOverrideToAddresses`).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum AddressOverrides {
    /// None: overrides name names only. The default.
    #[default]
    Refused,
    /// Any address (`true`): the whole network the proxy reaches is open
    /// to the server's clients.
    Any,
    /// Destinations matching one of these prefixes (`*` is any one label),
    /// e.g. `/$/inet/127.0.0.1/*`.
    Prefixes(Arc<[Prefix]>),
}

impl AddressOverrides {
    /// Whether an override may send requests to `dst`.
    pub fn allows(&self, dst: &Path) -> bool {
        if !is_address(dst) {
            return true;
        }
        match self {
            AddressOverrides::Refused => false,
            AddressOverrides::Any => true,
            AddressOverrides::Prefixes(prefixes) => prefixes.iter().any(|p| p.matches(dst)),
        }
    }

    /// The first dentry of `dtab` with a destination this policy refuses.
    fn refused<'a>(&self, dtab: &'a Dtab) -> Option<&'a Dentry> {
        if *self == AddressOverrides::Any {
            return None;
        }
        dtab.dentries()
            .iter()
            .find(|d| d.dst.leaves().into_iter().any(|leaf| !self.allows(leaf)))
    }
}

/// Whether `path` names an address: it holds a `$` label, the global
/// namer's. Anywhere, not only first, so that a transformer-style prefix
/// (`/%/x/$/inet/...`) cannot hide one.
pub fn is_address(path: &Path) -> bool {
    path.labels().any(|l| l == b"$")
}

/// The request-local dtab: `l5d-ctx-dtab` (and the legacy `dtab-local`)
/// values, then `l5d-dtab` values, so the user's overrides win. `None` when
/// the request carries none (the common case, with no allocation). Every
/// header is checked against `addresses`, the ones proxies write too: a
/// context dtab is as much the client's choice as `l5d-dtab`.
pub fn local_dtab(
    headers: &HeaderMap,
    addresses: &AddressOverrides,
) -> Result<Option<Dtab>, BadDtab> {
    // One pass over the names rather than three lookups: most requests
    // carry no local dtab.
    if !headers
        .keys()
        .any(|k| k == L5D_CTX_DTAB || k == L5D_DTAB || k == DTAB_LOCAL)
    {
        return Ok(None);
    }
    let mut local = Dtab::empty();
    for (name, header) in [
        (DTAB_LOCAL, "dtab-local"),
        (L5D_CTX_DTAB, "l5d-ctx-dtab"),
        (L5D_DTAB, "l5d-dtab"),
    ] {
        for value in headers.get_all(name) {
            let text = value.to_str().map_err(|_| BadDtab::Malformed {
                header,
                message: "the value is not visible ASCII".to_string(),
            })?;
            let dtab = Dtab::read(text).map_err(|e| BadDtab::Malformed {
                header,
                message: e.to_string(),
            })?;
            if let Some(dentry) = addresses.refused(&dtab) {
                return Err(BadDtab::ToAddress {
                    header,
                    dentry: dentry.show(),
                });
            }
            local = local.concat(&dtab);
        }
    }
    Ok(Some(local))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::map as headers;

    fn prefixes(list: &[&str]) -> AddressOverrides {
        AddressOverrides::Prefixes(list.iter().map(|p| Prefix::read(p).unwrap()).collect())
    }

    #[test]
    fn local_dtab_puts_the_users_override_last() {
        let h = headers(&[("l5d-dtab", "/a => /c"), ("l5d-ctx-dtab", "/a => /b")]);
        let dtab = local_dtab(&h, &AddressOverrides::Refused).unwrap().unwrap();
        assert_eq!(dtab.show(), "/a=>/b;/a=>/c");
        assert!(
            local_dtab(&HeaderMap::new(), &AddressOverrides::Refused)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_malformed_override_says_why() {
        let h = headers(&[("l5d-dtab", "/a => ")]);
        let err = local_dtab(&h, &AddressOverrides::Refused).unwrap_err();
        assert!(
            matches!(
                err,
                BadDtab::Malformed {
                    header: "l5d-dtab",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("Invalid dtab in l5d-dtab: "),
            "{err}"
        );
    }

    /// Every header, every place in a destination an address can hide,
    /// every `/$/` namer: refused by default, naming header and dentry.
    #[test]
    fn overrides_to_addresses_are_refused_by_default() {
        let refused = [
            ("l5d-dtab", "/svc/world => /$/inet/127.0.0.1/9991"),
            ("dtab-local", "/svc/world => /$/inet/127.0.0.1/9991"),
            ("l5d-ctx-dtab", "/svc/world => /$/inet/127.0.0.1/9991"),
            ("l5d-dtab", "/svc => /$/fixedinet/10.0.0.1/80"),
            ("l5d-dtab", "/svc => /$/io.buoyant.rinet/80"),
            ("l5d-dtab", "/svc => /$/io.buoyant.hostportPfx/hp"),
            ("l5d-dtab", "/svc => /$/io.buoyant.porthostPfx/ph"),
            ("l5d-dtab", "/svc => /$/io.l5d.anything/x"),
            ("l5d-dtab", "/svc/a => /host/a | /$/inet/10.0.0.1/80"),
            (
                "l5d-dtab",
                "/svc/a => 9 * /host/a & 1 * /$/inet/10.0.0.1/80",
            ),
            ("l5d-dtab", "/svc/a => /host/a & (~ | /$/inet/h/1)"),
            ("l5d-dtab", "/svc/a => /%/io.l5d.port/1/$/inet/h/1"),
            ("l5d-dtab", "/svc/a => /\\x24/inet/h/1"),
            ("l5d-dtab", "/a => /b; /svc/world => /$/inet/127.0.0.1/9991"),
        ];
        for (header, value) in refused {
            let err = local_dtab(&headers(&[(header, value)]), &AddressOverrides::Refused)
                .expect_err(value);
            let BadDtab::ToAddress { header: h, dentry } = &err else {
                panic!("{value}: {err:?}")
            };
            assert_eq!(*h, header);
            assert!(!dentry.starts_with("/a=>"), "{value}: names {dentry}");
            assert!(
                err.to_string()
                    .starts_with(&format!("Refused {header} dentry /")),
                "{err}"
            );
        }
        let allowed = [
            "/svc/world => /host/world-v2",
            "/svc/world => /#/io.l5d.fs/world-v2",
            "/svc => /srv | ~ | ! | $",
            // Rewriting an address to a name sends nowhere new.
            "/$/inet/10.0.0.1/80 => /svc/other",
        ];
        for value in allowed {
            let dtab = local_dtab(&headers(&[("l5d-dtab", value)]), &AddressOverrides::Refused);
            assert!(matches!(dtab, Ok(Some(_))), "{value}: {dtab:?}");
        }
    }

    #[test]
    fn servers_may_allow_all_addresses_or_some() {
        let h = headers(&[("l5d-dtab", "/svc/world => /$/inet/127.0.0.1/9991")]);
        assert!(local_dtab(&h, &AddressOverrides::Any).unwrap().is_some());
        let some = prefixes(&["/$/inet/127.0.0.1/*", "/$/inet/backend.test"]);
        assert!(local_dtab(&h, &some).unwrap().is_some());
        let h = headers(&[("l5d-dtab", "/svc => /$/inet/backend.test/80")]);
        assert!(local_dtab(&h, &some).unwrap().is_some());
        for refused in [
            "/svc => /$/inet/10.0.0.1/80",
            "/svc => /$/inet/127.0.0.2/80",
            "/svc => /$/io.buoyant.rinet/80/127.0.0.1",
            "/svc => /$/inet/127.0.0.1/1 & /$/inet/evil/1",
        ] {
            let h = headers(&[("l5d-dtab", refused)]);
            assert!(
                matches!(local_dtab(&h, &some), Err(BadDtab::ToAddress { .. })),
                "{refused}"
            );
        }
    }
}
