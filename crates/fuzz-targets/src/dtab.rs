//! The text syntax of `l5d-dtab`: every string either fails to parse or
//! parses to a value whose shown form parses again to the same value.

use l5d_dtab::{Dentry, Dtab, NameTree, Path, Prefix};

/// `Dtab::read`, and `Dentry::read` / `Prefix::read` on the same text.
pub fn dtab(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(dtab) = Dtab::read(text) {
        // Weights keep two decimals through `show` (`%.2f`), and a weight
        // of exactly 1 is not shown while 1.001 shows as `1.00`: the shown
        // form is stable from the second `show` on.
        let again = reparse(&dtab.show(), Dtab::read);
        let shown = again.show();
        assert_eq!(
            reparse(&shown, Dtab::read).show(),
            shown,
            "Dtab show is not stable"
        );
        assert_eq!(again.len(), dtab.len(), "{shown:?} lost dentries");
        for dentry in dtab.dentries() {
            let one = reparse(&dentry.show(), Dentry::read);
            assert_eq!(one.prefix, dentry.prefix, "{shown:?}: a prefix changed");
        }
    }
    if let Ok(dentry) = Dentry::read(text) {
        let again = reparse(&dentry.show(), Dentry::read);
        assert_eq!(again.prefix, dentry.prefix);
        let shown = again.show();
        assert_eq!(reparse(&shown, Dentry::read).show(), shown);
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

/// `NameTree::read`: the shown form reads back to the same leaves, and is
/// stable but for weights beyond two decimals.
pub fn name_tree(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(tree) = NameTree::<Path>::read(text) else {
        return;
    };
    // Stable from the second `show` on, as in [`dtab`].
    let again = reparse(&tree.show(), NameTree::<Path>::read);
    assert_eq!(again.leaves(), tree.leaves(), "{text:?}: leaves changed");
    let shown = again.show();
    let third = reparse(&shown, NameTree::<Path>::read);
    assert_eq!(third.show(), shown, "NameTree show is not stable");
}

/// Parses a shown value; failing to is a bug: `show` wrote text its own
/// parser refuses.
fn reparse<T, E: std::fmt::Display>(shown: &str, read: impl Fn(&str) -> Result<T, E>) -> T {
    read(shown).unwrap_or_else(|e| panic!("the shown form {shown:?} does not parse: {e}"))
}
