//! Checks on the third-party files vendored into the repository.
//!
//! Each folder under `testkit/vendor/` (axe-core, for the browser tests) and
//! `app/assets/vendor/` (Chartist, served by the app) holds a `VENDOR.md`
//! naming the package, version, registry tarball and licence, with a table
//! of every file's size and sha256. The tests here recompute both for every
//! file, so a silent edit, a file added without a row, or a row whose file
//! went missing fails them.

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use sha2::{Digest, Sha256};

    use crate::hex;
    use crate::process::workspace_root;

    /// The `| `file` | bytes | `sha256` |` rows of a VENDOR.md table.
    fn recorded(vendor_md: &str) -> BTreeMap<String, (u64, String)> {
        vendor_md
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line
                    .split('|')
                    .map(|c| c.trim().trim_matches('`'))
                    .collect();
                let [_, name, bytes, sha, _] = cells[..] else {
                    panic!("a VENDOR.md row has three cells: {line:?}");
                };
                let bytes = bytes
                    .parse()
                    .unwrap_or_else(|e| panic!("size in {line:?}: {e}"));
                (name.to_owned(), (bytes, sha.to_owned()))
            })
            .collect()
    }

    /// Every file in `dir` but VENDOR.md, with its size and sha256.
    fn actual(dir: &Path) -> BTreeMap<String, (u64, String)> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{} is read: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.file_name().is_some_and(|n| n != "VENDOR.md"))
            .map(|path| {
                let bytes = std::fs::read(&path).expect("a vendored file is read");
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .expect("a file name in UTF-8")
                    .to_owned();
                (name, (bytes.len() as u64, hex(&Sha256::digest(&bytes))))
            })
            .collect()
    }

    /// The vendored folders under `parent`, each of which must hold a
    /// VENDOR.md.
    fn folders(parent: &Path) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(parent)
            .unwrap_or_else(|e| panic!("{} is read: {e}", parent.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.is_dir())
            .collect();
        dirs.sort();
        dirs
    }

    fn check(dir: &Path) {
        let vendor_md = std::fs::read_to_string(dir.join("VENDOR.md"))
            .unwrap_or_else(|e| panic!("{}/VENDOR.md is read: {e}", dir.display()));
        assert_eq!(
            actual(dir),
            recorded(&vendor_md),
            "the files in {} (left) differ from its VENDOR.md table (right): \
             an edited vendored file, or one added or removed without updating VENDOR.md",
            dir.display()
        );
    }

    #[test]
    fn axe_core_matches_its_vendor_md() {
        let dirs = folders(&workspace_root().join("testkit/vendor"));
        let names: Vec<_> = dirs.iter().filter_map(|d| d.file_name()).collect();
        assert_eq!(names, ["axe-core"]);
        dirs.iter().for_each(|dir| check(dir));
    }

    #[test]
    fn the_apps_vendored_assets_match_their_vendor_md() {
        let dirs = folders(&workspace_root().join("app/assets/vendor"));
        assert!(
            dirs.iter().any(|d| d.ends_with("chartist")),
            "app/assets/vendor/chartist is vendored: {dirs:?}"
        );
        dirs.iter().for_each(|dir| check(dir));
    }

    #[test]
    fn a_changed_byte_or_an_unlisted_file_is_told_apart_from_the_table() {
        let scratch = crate::TempDir::new();
        let content = b"console.log(1);\n";
        scratch.write("lib.js", content);
        let row = format!(
            "| `lib.js` | {} | `{}` |\n",
            content.len(),
            hex(&Sha256::digest(content))
        );
        scratch.write("VENDOR.md", format!("| File | Bytes | SHA-256 |\n{row}"));
        check(scratch.path());

        scratch.write("lib.js", b"console.log(2);\n");
        let edited = std::panic::catch_unwind(|| check(scratch.path()));
        assert!(edited.is_err(), "an edited file of the same size fails");

        scratch.write("lib.js", content);
        scratch.write("extra.js", "");
        let unlisted = std::panic::catch_unwind(|| check(scratch.path()));
        assert!(unlisted.is_err(), "a file without a row fails");
    }
}
