//! Files that matter are written to a temporary name and renamed into place, so
//! a crash mid-write leaves the previous version intact.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Writes `path` through `write`, then renames it into place; on error the old file stays.
pub fn write_atomic<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()>,
{
    replace_file(path, |tmp| {
        let file = File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        out.into_inner().map_err(|e| Error::io(tmp, e.into_error()))?;
        Ok(())
    })
}

/// Lets `write` create a temporary sibling of `path` by name (for writers that
/// take a path), then syncs it and renames it into place.
pub fn replace_file(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let result = write(&tmp).and_then(|()| {
        File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A sibling name, so the rename stays on one file system.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes one JSON value per line.
pub fn write_jsonl<T: serde::Serialize>(
    out: &mut impl Write,
    items: impl IntoIterator<Item = T>,
) -> std::io::Result<()> {
    for item in items {
        serde_json::to_writer(&mut *out, &item)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "old").unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(b"partial").unwrap();
            Err(Error::Other("boom".into()))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temp file left behind");
        write_atomic(&path, |w| w.write_all(b"new").map_err(|e| Error::io("a", e))).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }
}
