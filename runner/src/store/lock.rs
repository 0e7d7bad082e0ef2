//! One process per state directory: an advisory exclusive lock on `LOCK`,
//! held from before anything is restored or read until the process ends.
//!
//! Two runners on one directory would each believe they own the open log
//! segment, the manifest and compaction, and destroy each other's files.
//! `flock` locks belong to the open file, so the kernel drops this one when
//! the process dies however it dies: a crash never leaves a stale lock to
//! clean up by hand. The file also says who holds it (pid, host, since
//! when), for the error the second process gets.

use super::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

pub const LOCK_FILE: &str = "LOCK";

/// The held lock; dropping it releases the directory.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock on `dir` (created if missing), or fails at once,
    /// naming the holder.
    pub fn acquire(dir: &Path) -> Result<StateLock, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join(LOCK_FILE);
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        // Not truncated on open: the holder's line stays readable for the
        // process that finds the lock taken.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(StoreError::Locked {
                    path: dir.display().to_string(),
                    holder: describe_holder(holder.trim()),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let line = format!(
            "pid={} host={} since_unix={}\n",
            std::process::id(),
            host_name(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        );
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(line.as_bytes()).map_err(io)?;
        Ok(StateLock { _file: file })
    }
}

fn describe_holder(line: &str) -> String {
    if line.is_empty() {
        "another process (it has not written its pid yet)".to_string()
    } else {
        format!("another process ({line})")
    }
}

/// The kernel's host name (a pod's name in Kubernetes).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid={}", std::process::id())),
            "the error names the holder: {err}"
        );
        assert!(err.contains("in use by"), "{err}");
        drop(first);
        StateLock::acquire(dir.path()).expect("free again once released");
    }
}
