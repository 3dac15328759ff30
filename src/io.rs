//! Files that matter are written to a temporary name in the same folder and
//! renamed into place, so a reader or a crashed run never sees a half-written
//! file and the previous version survives a failure.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

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
    match result {
        Ok(()) => sync_dir(path),
        // The temporary file is garbage whatever went wrong; the original error matters more.
        Err(_) => drop(std::fs::remove_file(&tmp)),
    }
    result
}

/// One JSON object per line into `path`, atomically.
pub fn write_jsonl<'a, T, I>(path: &Path, items: I) -> Result<()>
where
    T: Serialize + 'a,
    I: IntoIterator<Item = &'a T>,
{
    write_atomic(path, |w| write_json_lines(w, items).map_err(|e| Error::io(path, e)))
}

/// Pretty-printed JSON into `path`, atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Other(e.to_string()))?;
    write_text(path, &text)
}

/// Text into `path`, atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |w| w.write_all(text.as_bytes()).map_err(|e| Error::io(path, e)))
}

/// A JSON file read into `T`; a parse error names the file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Other(format!("{}: {e}", path.display())))
}

/// An output folder (a run, a cross-validation) made ready: created if
/// missing; one that holds files is an error unless `overwrite` replaces it.
/// `hint` ends the error ("pass --overwrite to replace it …").
pub fn prepare_output_dir(out: &Path, overwrite: bool, hint: &str) -> Result<()> {
    let occupied = std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some());
    if occupied {
        if !overwrite {
            return Err(Error::Other(format!("{} exists; {hint}", out.display())));
        }
        std::fs::remove_dir_all(out).map_err(|e| Error::io(out, e))?;
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))
}

/// One JSON value per line into a writer.
pub fn write_json_lines<T: Serialize>(out: &mut impl Write, items: impl IntoIterator<Item = T>) -> std::io::Result<()> {
    for item in items {
        serde_json::to_writer(&mut *out, &item)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// A sibling name, so the rename stays on one file system; the pid keeps two
/// processes writing the same file from sharing a temporary.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Makes the rename itself durable. Best effort: not every platform can open a directory.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        write_jsonl(&path, &[serde_json::json!({"a": 1}), serde_json::json!({"a": 2})]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.jsonl")]);
    }

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
