//! The text syntax of `l5d-dtab`: every string either fails to parse or
//! parses to a value whose shown form parses again to the same value.

use l5d_dtab::{Dentry, Dtab, NameTree, Path, Prefix};

/// `Dtab::read`, and `Dentry::read` / `Prefix::read` on the same text.
pub fn dtab(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(dtab) = Dtab::read(text) {
        let shown = dtab.show();
        let again = reparse(&shown, Dtab::read);
        // Trees keep their weights to two decimals only (`show` prints
        // `%.2f`), so the shown forms are compared, and must be stable.
        assert_eq!(again.show(), shown, "Dtab show is not stable");
        assert_eq!(again.len(), dtab.len(), "{shown:?} lost dentries");
        for dentry in dtab.dentries() {
            let one = reparse(&dentry.show(), Dentry::read);
            assert_eq!(one.prefix, dentry.prefix, "{shown:?}: a prefix changed");
        }
    }
    if let Ok(dentry) = Dentry::read(text) {
        let again = reparse(&dentry.show(), Dentry::read);
        assert_eq!(again.prefix, dentry.prefix);
        assert_eq!(again.show(), dentry.show());
    }
    if let Ok(prefix) = Prefix::read(text) {
        assert_eq!(reparse(&prefix.show(), Prefix::read), prefix);
    }
}

/// `Path::read`: a path's shown form reads back to the same labels.
pub fn path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = Path::read(text) {
        let again = reparse(&path.show(), Path::read);
        assert_eq!(again, path, "{text:?}");
    }
    // Any bytes make labels; a path made of them must show and read back.
    let labels = data.split(|b| *b == b'/').filter(|l| !l.is_empty());
    let built = Path::try_from_labels(labels).expect("no label is empty");
    assert_eq!(reparse(&built.show(), Path::read), built);
}

/// `NameTree::read`: the shown form is stable and, but for weights beyond
/// two decimals, the same tree.
pub fn name_tree(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(tree) = NameTree::<Path>::read(text) else {
        return;
    };
    let shown = tree.show();
    let again = reparse(&shown, NameTree::<Path>::read);
    assert_eq!(again.show(), shown, "NameTree show is not stable");
    assert_eq!(again.leaves(), tree.leaves(), "{text:?}: leaves changed");
}

/// Parses a shown value; failing to is a bug: `show` wrote text its own
/// parser refuses.
fn reparse<T, E: std::fmt::Display>(shown: &str, read: impl Fn(&str) -> Result<T, E>) -> T {
    read(shown).unwrap_or_else(|e| panic!("the shown form {shown:?} does not parse: {e}"))
}
