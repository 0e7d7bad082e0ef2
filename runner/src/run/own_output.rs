//! Refuses an input that is one of the run's own outputs. A runner reading
//! its dead-letter file appends every bad line it reads back to the file it
//! reads, and never reaches the end; reading its change feed does the same
//! with every change. Compared by file identity (device and inode), so a
//! second name (a link, another path, standard input redirected from the
//! file) is caught as well as the same path.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One of the run's output files.
pub struct Output<'a> {
    /// What the output is, for the message (`the dead-letter file`).
    pub role: &'static str,
    pub path: &'a Path,
}

/// The output `input` is, if it is one: `input` is the input's metadata
/// (of the file, or of standard input's descriptor).
pub fn find<'o, 'a>(input: &Metadata, outputs: &'o [Output<'a>]) -> Option<&'o Output<'a>> {
    if !input.is_file() {
        return None;
    }
    outputs.iter().find(|o| {
        std::fs::metadata(o.path)
            .map(|m| m.dev() == input.dev() && m.ino() == input.ino())
            .unwrap_or(false)
    })
}

/// Standard input's metadata (a file it is redirected from, a pipe...).
pub fn stdin_metadata() -> Option<Metadata> {
    use std::os::fd::AsFd;
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    std::fs::File::from(fd).metadata().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_file_under_another_name_is_found_and_another_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join("dead.jsonl");
        let feed = dir.path().join("changes.jsonl");
        std::fs::write(&dead, "x\n").unwrap();
        std::fs::write(&feed, "y\n").unwrap();
        let link = dir.path().join("input.jsonl");
        std::fs::hard_link(&dead, &link).unwrap();
        let outputs = [
            Output {
                role: "the change feed",
                path: &feed,
            },
            Output {
                role: "the dead-letter file",
                path: &dead,
            },
        ];
        let found = find(&std::fs::metadata(&link).unwrap(), &outputs);
        assert_eq!(found.map(|o| o.role), Some("the dead-letter file"));
        let other = dir.path().join("other.jsonl");
        std::fs::write(&other, "x\n").unwrap();
        assert!(find(&std::fs::metadata(&other).unwrap(), &outputs).is_none());
    }
}
