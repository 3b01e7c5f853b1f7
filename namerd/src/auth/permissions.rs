//! Per-namespace permissions: for each namespace (or `*`, every
//! namespace), who may `read` and who may `write`. An identity may do a
//! thing to a namespace if the namespace's own entry or the `*` entry
//! lists it (or `*`, any identity) under that permission; `write` implies
//! `read`. A route that names no namespace (the namespace list, the
//! generic delegator) needs the permission on `*`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{EVERY_NAMESPACE, Identity, Permission, Scope};

/// Who may read and who may write one scope.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    #[serde(default)]
    pub read: Vec<Member>,
    #[serde(default)]
    pub write: Vec<Member>,
}

/// An entry of a grant list: one identity, or `*` for any identity.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Member {
    Any,
    One(Identity),
}

impl TryFrom<String> for Member {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        if name == "*" {
            Ok(Member::Any)
        } else {
            Identity::new(&name).map(Member::One)
        }
    }
}

impl Member {
    fn admits(&self, who: &Identity) -> bool {
        match self {
            Member::Any => true,
            Member::One(id) => id == who,
        }
    }
}

/// The permissions table of an `auth` block.
#[derive(Clone, Debug, Default)]
pub struct Permissions {
    by_scope: BTreeMap<String, Grants>,
}

impl Permissions {
    pub fn new(table: &BTreeMap<Scope, Grants>) -> Self {
        Permissions {
            by_scope: table
                .iter()
                .map(|(scope, grants)| (scope.as_str().to_string(), grants.clone()))
                .collect(),
        }
    }

    /// Whether `who` may do `need` to `ns` (`None`: every namespace).
    pub fn allows(&self, who: &Identity, ns: Option<&str>, need: Permission) -> bool {
        let own = ns.and_then(|ns| self.by_scope.get(ns));
        let every = self.by_scope.get(EVERY_NAMESPACE);
        own.into_iter().chain(every).any(|grants| {
            let write = grants.write.iter().any(|m| m.admits(who));
            match need {
                Permission::Write => write,
                Permission::Read => write || grants.read.iter().any(|m| m.admits(who)),
            }
        })
    }

    /// `ns` if it has an entry of its own, else `*`.
    pub fn scope<'a>(&'a self, ns: Option<&'a str>) -> &'a str {
        match ns {
            Some(ns) if self.by_scope.contains_key(ns) => ns,
            _ => EVERY_NAMESPACE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(yaml: &str) -> Permissions {
        let table: BTreeMap<Scope, Grants> = serde_saphyr::from_str(yaml).unwrap();
        Permissions::new(&table)
    }

    #[test]
    fn own_entry_and_every_namespace_both_grant() {
        let p = table(
            "\"*\": {read: [auditor], write: [admin]}\n\
             internal: {write: [deployer]}\n\
             public: {read: [\"*\"]}\n",
        );
        let id = |n: &str| Identity::new(n).unwrap();
        let (r, w) = (Permission::Read, Permission::Write);
        let cases = [
            ("deployer", Some("internal"), w, true),
            ("deployer", Some("internal"), r, true),
            ("deployer", Some("external"), w, false),
            ("deployer", Some("external"), r, false),
            ("deployer", None, r, false),
            ("admin", Some("internal"), w, true),
            ("admin", Some("external"), w, true),
            ("admin", None, r, true),
            ("auditor", Some("internal"), r, true),
            ("auditor", Some("internal"), w, false),
            ("anyone", Some("public"), r, true),
            ("anyone", Some("public"), w, false),
        ];
        for (who, ns, need, want) in cases {
            assert_eq!(p.allows(&id(who), ns, need), want, "{who} {need} {ns:?}");
        }
        assert_eq!(p.scope(Some("internal")), "internal");
        assert_eq!(p.scope(Some("random-name")), "*");
        assert_eq!(p.scope(None), "*");
    }
}
