//! Atomic checkpoint files and finding the epoch to resume from.
//!
//! burn-train's `FileCheckpointer` writes `<name>-<epoch>.bpk` in place, so a run killed while
//! saving can leave a truncated file that `--resume` would then fail to load. [`AtomicCheckpointer`]
//! writes to a temporary file in the same directory, syncs it and renames it over the final
//! name: a checkpoint file either exists whole or not at all. The model, optimizer and
//! scheduler records of one epoch are three such files; [`latest_complete_epoch`] picks the
//! newest epoch that has all three.

use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The record kinds burn-train saves each epoch, as file-name prefixes.
pub const RECORDS: [&str; 3] = ["model", "optim", "scheduler"];

/// Writes `<dir>/<name>-<epoch>.bpk` atomically (temporary file + fsync + rename).
pub struct AtomicCheckpointer {
    directory: PathBuf,
    name: &'static str,
}

impl AtomicCheckpointer {
    pub fn new(directory: &Path, name: &'static str) -> Self {
        Self {
            directory: directory.to_path_buf(),
            name,
        }
    }

    fn path(&self, epoch: usize) -> PathBuf {
        checkpoint_path(&self.directory, self.name, epoch)
    }
}

/// `<dir>/<name>-<epoch>.bpk`, burn-train's naming.
pub fn checkpoint_path(directory: &Path, name: &str, epoch: usize) -> PathBuf {
    directory.join(format!("{name}-{epoch}.bpk"))
}

impl<R: Checkpoint> Checkpointer<R> for AtomicCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        write_atomically(&self.path(epoch), &bytes).map_err(CheckpointerError::IOError)
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        let path = self.path(epoch);
        let bytes = std::fs::read(&path).map_err(CheckpointerError::IOError)?;
        R::checkpoint_from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(CheckpointerError::Record)
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        match std::fs::remove_file(self.path(epoch)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(CheckpointerError::IOError(e))
            }
            _ => Ok(()),
        }
    }
}

/// Writes `bytes` to `path` so that `path` is never seen half-written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// The newest epoch whose model, optimizer and scheduler checkpoints all exist in `directory`.
pub fn latest_complete_epoch(directory: &Path) -> Option<usize> {
    let entries = std::fs::read_dir(directory).ok()?;
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let epoch = name
                .strip_prefix("model-")?
                .strip_suffix(".bpk")?
                .parse::<usize>()
                .ok()?;
            Some(epoch)
        })
        .filter(|&epoch| {
            RECORDS
                .iter()
                .all(|r| checkpoint_path(directory, r, epoch).is_file())
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_complete_epoch_ignores_epochs_with_a_missing_record() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(latest_complete_epoch(d), None);
        for epoch in [1, 2] {
            for r in RECORDS {
                std::fs::write(checkpoint_path(d, r, epoch), b"x").unwrap();
            }
        }
        // Epoch 3 was killed after the model file: not resumable.
        std::fs::write(checkpoint_path(d, "model", 3), b"x").unwrap();
        std::fs::write(d.join(".model-4.bpk.tmp-1"), b"partial").unwrap();
        assert_eq!(latest_complete_epoch(d), Some(2));
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/model-1.bpk");
        write_atomically(&p, b"first").unwrap();
        write_atomically(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(names.len(), 1);
    }
}
