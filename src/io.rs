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
    stage(path, buffered(path, write))?.map_or(Ok(()), Pending::commit)
}

/// Lets `write` create a temporary sibling of `path` by name (for writers that
/// take a path), then syncs it and renames it into place.
pub fn replace_file(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    stage(path, write)?.map_or(Ok(()), Pending::commit)
}

/// Files written under temporary names and renamed into place together once
/// every one is written: a failure (a full disk) while writing any of them
/// leaves all the old ones as they were, not a set half new and half old (a
/// split's train beside an old dev, a report beside old metrics). What is not
/// committed is removed.
#[derive(Default)]
pub struct Staged(Vec<Pending>);

impl Staged {
    /// Writes `path`'s temporary through `write` ([`write_atomic`]'s form).
    pub fn file(&mut self, path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
        self.by_name(path, buffered(path, write))
    }

    /// Writes `path`'s temporary by name ([`replace_file`]'s form).
    pub fn by_name(&mut self, path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        // Two outputs that are one file (a link to another) would share a temporary name.
        let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let target = real(path);
        if self.0.iter().any(|p| real(&p.path) == target) {
            return Err(Error::Other(format!(
                "{}: written twice in one set (a link to another output?)",
                path.display()
            )));
        }
        self.0.extend(stage(path, write)?);
        Ok(())
    }

    /// Text into `path` ([`write_text`]'s form).
    pub fn text(&mut self, path: &Path, text: &str) -> Result<()> {
        self.file(path, text_into(path, text))
    }

    /// Pretty-printed JSON into `path` ([`write_json`]'s form).
    pub fn json(&mut self, path: &Path, value: &impl Serialize) -> Result<()> {
        self.text(path, &pretty_json(value)?)
    }

    /// Renames every file into place, in the order written. Should a rename
    /// fail (an immutable file), those done are undone from hard-linked
    /// copies of the old files, so the set stays old rather than mixed.
    pub fn commit(mut self) -> Result<()> {
        // Each file renamed: its path, its old version's backup, and whether it had one at all.
        let mut done: Vec<(PathBuf, Option<PathBuf>, bool)> = Vec::new();
        while !self.0.is_empty() {
            let pending = self.0.remove(0);
            let existed = std::fs::symlink_metadata(&pending.path).is_ok();
            let backup = backup_of(&pending.path);
            if let Err(e) = std::fs::rename(&pending.tmp, &pending.path) {
                let _ = std::fs::remove_file(&pending.tmp);
                backup.map(std::fs::remove_file);
                for (path, backup, existed) in done.into_iter().rev() {
                    let _ = match (backup, existed) {
                        (Some(backup), _) => std::fs::rename(backup, &path),
                        (None, false) => std::fs::remove_file(&path),
                        // An old version that could not be linked (another owner's file, a file
                        // system without links) is gone: the new one stays rather than nothing.
                        (None, true) => Ok(()),
                    };
                }
                return Err(Error::io(&pending.path, e));
            }
            done.push((pending.path, backup, existed));
        }
        for (path, backup, _) in done {
            backup.map(std::fs::remove_file);
            sync_dir(&path);
        }
        Ok(())
    }
}

/// A hard link to the file at `path`, if there is one (and the file system
/// links): the old version, to put back should the set fail.
fn backup_of(path: &Path) -> Option<PathBuf> {
    path.file_name()?;
    let backup = hidden_sibling(path, &format!("{}.old", std::process::id()));
    let _ = std::fs::remove_file(&backup);
    std::fs::hard_link(path, &backup).ok().map(|()| backup)
}

impl Drop for Staged {
    fn drop(&mut self) {
        for pending in &self.0 {
            let _ = std::fs::remove_file(&pending.tmp);
        }
    }
}

/// A file written and synced under its temporary name, to be renamed over `path`.
struct Pending {
    tmp: PathBuf,
    path: PathBuf,
}

impl Pending {
    fn commit(self) -> Result<()> {
        let result = std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e));
        match result {
            Ok(()) => sync_dir(&self.path),
            Err(_) => drop(std::fs::remove_file(&self.tmp)),
        }
        result
    }
}

/// `write` through a buffered file created at the name it is given; errors name `path`,
/// the file the user asked for, not its temporary sibling.
fn buffered<'a, F>(path: &'a Path, write: F) -> impl FnOnce(&Path) -> Result<()> + 'a
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()> + 'a,
{
    move |tmp| {
        let file = if in_place(tmp) {
            // Written in place ([`stage`]): appended to, as the shell's `>>` opened it, not truncated.
            std::fs::OpenOptions::new().append(true).open(tmp).map_err(|e| Error::io(path, e))?
        } else {
            File::create(tmp).map_err(|e| temp_error(path, tmp, e))?
        };
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        out.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
        Ok(())
    }
}

/// Locks `file` (at `path`) for as long as it stays open; a second process
/// asking gets `busy`, named with the path, instead of waiting.
pub fn try_lock(file: &File, path: &Path, busy: &str) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Other(format!("{}: {busy}", path.display()))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(path, e)),
    }
}

/// Holds a lock beside folder `dir` (the hidden file `.NAME.lock` next to
/// it, which outlives the folder being set aside and remade) while the
/// returned guard lives; none where the parent folder cannot hold it.
pub fn lock_beside(dir: &Path, busy: &str) -> Result<Option<DirLock>> {
    let real = real_folder(dir)?;
    let (Some(name), Some(parent)) = (real.file_name(), real.parent()) else { return Ok(None) };
    // The folders made for the lock go again with it if the run never makes its own.
    let made = parent.ancestors().take_while(|a| !a.exists()).last().map(Path::to_path_buf);
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let path = hidden_sibling(&parent.join(name), "lock");
    // A file system whose inodes do not hold still could fail the check below forever.
    for _ in 0..100 {
        let file = match std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path) {
            Ok(file) => file,
            // A folder the user may write in a parent they may not (a mount point, a volume): unlocked, as before.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(30) => {
                return Ok(None);
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        try_lock(&file, dir, busy)?;
        // A run that ended before its folder existed removes the lock file (see `Drop`): a
        // file opened just before that and locked after it is no longer the path's, so ask again.
        if same_file(&file, &path) {
            return Ok(Some(DirLock { file, path, dir: real, made }));
        }
    }
    Err(Error::Other(format!("{}: the lock file keeps changing; {busy}", path.display())))
}

/// The folder as it really is (`.`, `run/`, a link to another folder), so
/// that every name of it shares one lock and one set-aside copy.
fn real_folder(dir: &Path) -> Result<PathBuf> {
    dir.canonicalize().or_else(|_| std::path::absolute(dir)).map_err(|e| Error::io(dir, e))
}

/// The lock [`lock_beside`] holds. A run refused before its folder was made
/// (a missing input, a bad flag) leaves no `.NAME.lock` behind.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
    dir: PathBuf,
    /// The outermost folder made to hold the lock, if any.
    made: Option<PathBuf>,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Removed while still locked; a process that opened it meanwhile sees it is gone and starts again.
        if self.dir.exists() || !same_file(&self.file, &self.path) {
            return;
        }
        let _ = std::fs::remove_file(&self.path);
        let Some(made) = &self.made else { return };
        // Empty folders alone, from the lock's up to the outermost one made.
        for folder in self.path.ancestors().skip(1) {
            if std::fs::remove_dir(folder).is_err() || folder == made {
                break;
            }
        }
    }
}

/// Whether `path` still names the file `file` has open.
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => same_inode(&a, &b),
        _ => false,
    }
}

/// Whether two metadata describe one file (device and inode; elsewhere than
/// Unix, the size and time, which the caller compares anyway).
#[cfg(unix)]
pub fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
pub fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

/// The temporary file `tmp` for `path` (beside it, or beside the file a link
/// names) could not be made: say so, since the folder, not the file (which
/// may well be writable), is what refused.
fn temp_error(path: &Path, tmp: &Path, e: std::io::Error) -> Error {
    let dir = tmp.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let why = format!(
        "{e} (creating a temporary file in {}: outputs are written beside their name and renamed into place)",
        dir.display()
    );
    Error::Other(format!("{}: {why}", path.display()))
}

/// Writes `path`'s temporary sibling through `write` and syncs it: the rename
/// is left to the caller. A pipe or a device is written in place (nothing to rename).
fn stage(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<Option<Pending>> {
    let Some(path) = staged_file(path) else { return write(path).map(|()| None) };
    let path = path.as_path();
    let tmp = temp_path(path);
    // The permissions a new file gets here (the umask's): a writer that makes
    // its own private temporary and renames it over `tmp` (safetensors does)
    // would leave the file readable by its owner alone.
    let mode = File::create(&tmp).and_then(|f| f.metadata()).map(|m| m.permissions());
    let written = write(&tmp).and_then(|()| {
        if let Ok(mode) = mode {
            std::fs::set_permissions(&tmp, mode).map_err(|e| Error::io(path, e))?;
        }
        File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io(path, e))
    });
    match written {
        Ok(()) => Ok(Some(Pending { tmp, path: path.to_path_buf() })),
        // The temporary file is garbage whatever went wrong; the original error matters more.
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
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
    write_text(path, &pretty_json(value)?)
}

/// Text into `path`, atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, text_into(path, text))
}

fn pretty_json(value: &impl Serialize) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Other(e.to_string()))
}

/// A writer of `text`, its errors naming `path`.
fn text_into<'a>(path: &'a Path, text: &'a str) -> impl FnOnce(&mut BufWriter<File>) -> Result<()> + 'a {
    move |w| w.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
}

/// A JSON file read into `T`; a parse error names the file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Other(format!("{}: {e}", path.display())))
}

/// What `--overwrite` may replace: a folder the command wrote before (it
/// holds `marker`, e.g. `train_config.json`) and that holds none of the
/// command's `inputs`. So `--out .`, a data folder or a base model's folder is
/// never deleted, nor a run that the new one reads.
#[derive(Debug, Clone, Copy)]
pub struct Replace<'a> {
    pub marker: &'a str,
    pub inputs: &'a [PathBuf],
}

/// Refuses an output that is one of the inputs (the same file by another
/// name included), or lies inside an input folder (a model's): writing it
/// would destroy what is being read. A device or pipe is no such output.
pub fn check_not_an_input<P: AsRef<Path>>(
    output: &Path,
    flag: &str,
    inputs: impl IntoIterator<Item = P>,
) -> Result<()> {
    if std::fs::metadata(output).is_ok_and(|m| !m.is_file()) {
        return Ok(());
    }
    // An output not written yet is placed by its folder.
    let folder = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (Ok(folder), Some(name)) = (folder.canonicalize(), output.file_name()) else { return Ok(()) };
    let out = folder.join(name);
    let destroys = |input: &Path| input.canonicalize().is_ok_and(|i| i == out || (i.is_dir() && out.starts_with(&i)));
    match inputs.into_iter().find(|p| destroys(p.as_ref())) {
        Some(input) => Err(Error::Other(format!(
            "{flag} {} is the input {} or inside it: writing it would destroy what is read; choose another file",
            output.display(),
            input.as_ref().display()
        ))),
        None => Ok(()),
    }
}

/// An output folder (a run, a cross-validation) made ready: created if
/// missing; one that holds files is an error unless `overwrite` says it may
/// be replaced. `hint` ends the error ("pass --overwrite to replace it …").
pub fn prepare_output_dir(out: &Path, overwrite: Option<Replace>, hint: &str) -> Result<()> {
    let replace = check_output_dir(out, overwrite, hint)?;
    make_output_dir(out, replace)
}

/// The folder made, emptied first if `replace` ([`check_output_dir`]'s answer).
pub fn make_output_dir(out: &Path, replace: bool) -> Result<()> {
    if replace {
        std::fs::remove_dir_all(out).map_err(|e| Error::io(out, e))?;
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))
}

/// An output folder for a long run: when `--overwrite` replaces one, the old
/// folder is set aside (renamed to a hidden sibling, `.NAME.replaced`) rather
/// than emptied, and [`Aside::settle`] drops it once the new one is done, or
/// puts it back if the run failed. A kill in between leaves it beside the
/// new folder, to rename back by hand.
pub struct Aside {
    out: PathBuf,
    kept: Option<PathBuf>,
}

impl Aside {
    /// Makes `out`, setting the old folder aside first if `replace`
    /// ([`check_output_dir`]'s answer).
    pub fn make(out: &Path, replace: bool) -> Result<Aside> {
        // A link to a folder: the folder it names is set aside and made anew, as the lock is beside it.
        let real = real_folder(out)?;
        let out = real.as_path();
        // What a settle killed midway had already committed to deleting.
        let _ = std::fs::remove_dir_all(hidden_sibling(out, "discarded"));
        let kept = hidden_sibling(out, "replaced");
        if kept.exists() {
            // Set aside by a run that was killed: it may be the last good one, so it is the user's to keep.
            let left = out.exists();
            let (kept, out) = (kept.display(), out.display());
            let what = match left {
                true => format!("first remove {out} (what that run left) and rename {kept} back to it"),
                false => format!("rename {kept} back to {out}"),
            };
            return Err(Error::Other(format!(
                "{kept} holds the folder an earlier --overwrite set aside and did not finish replacing; \
                 {what}, or remove {kept}"
            )));
        }
        let kept = if replace {
            std::fs::rename(out, &kept).map_err(|e| Error::io(out, e))?;
            Some(kept)
        } else {
            None
        };
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        Ok(Aside { out: out.to_path_buf(), kept })
    }

    /// The folder an interrupted `--overwrite` left aside beside `out`, if
    /// any, to [`Aside::settle`] once the resumed run is done.
    pub fn left_behind(out: &Path) -> Result<Aside> {
        let out = real_folder(out)?;
        let kept = Some(hidden_sibling(&out, "replaced")).filter(|k| k.exists());
        Ok(Aside { out, kept })
    }

    /// Leaves the old folder aside (a run interrupted to be resumed): where it is, if any.
    pub fn keep(self) -> Option<PathBuf> {
        self.kept
    }

    /// The old folder goes if the run is `done`, else it comes back in place of the new one.
    /// What goes is first renamed to `.NAME.discarded`, so that a kill while it is
    /// deleted never leaves a half-deleted folder under a name that is kept.
    pub fn settle(self, done: bool) {
        let Some(kept) = self.kept else { return };
        let discarded = hidden_sibling(&self.out, "discarded");
        let gone = if done { &kept } else { &self.out };
        // Where the rename fails (a `.discarded` that could not be removed), deleted in place as before.
        let doomed = if std::fs::rename(gone, &discarded).is_ok() { &discarded } else { gone };
        if std::fs::remove_dir_all(doomed).is_ok() && !done {
            let _ = std::fs::rename(&kept, &self.out);
        }
    }
}

/// [`prepare_output_dir`]'s refusals alone, touching nothing: a command asks
/// first, so that it fails before its long work, and empties the folder only
/// once that work has read its inputs. True if the folder is to be replaced.
pub fn check_output_dir(out: &Path, overwrite: Option<Replace>, hint: &str) -> Result<bool> {
    if std::fs::metadata(out).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::Other(format!("{}: not a folder; this names the folder to write", out.display())));
    }
    if !std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Ok(false);
    }
    match overwrite {
        Some(replace) => replaceable(out, replace).map(|()| true),
        None => Err(Error::Other(format!("{} exists; {hint}", out.display()))),
    }
}

fn replaceable(out: &Path, Replace { marker, inputs }: Replace) -> Result<()> {
    let refuse = |why: String| Err(Error::Other(format!("--overwrite would delete {}, {why}", out.display())));
    if !out.join(marker).is_file() {
        return refuse(format!(
            "which has no {marker}: it replaces only a folder this command wrote; choose another --out"
        ));
    }
    let root = out.canonicalize().map_err(|e| Error::io(out, e))?;
    match inputs.iter().find(|p| p.canonicalize().is_ok_and(|p| p.starts_with(&root))) {
        Some(input) => refuse(format!("and {} inside it, which this run reads; choose another --out", input.display())),
        None => Ok(()),
    }
}

/// `text` to stdout. A reader that went away (`| head`) chose to: nothing to
/// report then; any other failure (a full disk) is an error naming stdout.
pub fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.map_err(|e| Error::io("stdout", e)),
    }
}

/// One JSON value per line into a writer.
pub fn write_json_lines<T: Serialize>(out: &mut impl Write, items: impl IntoIterator<Item = T>) -> std::io::Result<()> {
    for item in items {
        serde_json::to_writer(&mut *out, &item)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The file that writing `path` replaces through a temporary beside it: `path`,
/// or the file a link names (the link stays); none for a stream written in place.
fn staged_file(path: &Path) -> Option<PathBuf> {
    // `/dev/stdout` and `/proc/self/fd/1` are links to whatever the shell opened (`>> log.txt`):
    // written in place, as a stream, or the rename would replace the log the shell appends to.
    if in_place(path) {
        return None;
    }
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if let Some(target) = is_link.then(|| path.canonicalize().ok()).flatten() {
        return staged_file(&target);
    }
    // A link to a file not made yet: that file is written (its folder must exist), the link kept.
    let dangling = is_link.then(|| std::fs::read_link(path).ok()).flatten();
    if let Some(target) = dangling.map(|t| path.parent().unwrap_or(Path::new("")).join(t)) {
        let chained = std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink());
        return Some(if chained { path.to_path_buf() } else { target });
    }
    // A pipe or a device (`/dev/null`, `/dev/stdout`) is written in place:
    // renaming over it would replace the device with a plain file.
    let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
    (!special).then(|| path.to_path_buf())
}

/// The temporary file that [`write_atomic`] writes `path` through in this
/// process, if it writes one ([`staged_file`]).
pub fn temp_file_of(path: &Path) -> Option<PathBuf> {
    staged_file(path).map(|file| temp_path(&file))
}

/// A sibling name, so the rename stays on one file system; the pid keeps two
/// processes writing the same file from sharing a temporary.
fn temp_path(path: &Path) -> PathBuf {
    hidden_sibling(path, &format!("{}.tmp", std::process::id()))
}

/// `.NAME.SUFFIX` beside `path`: the one naming of the temporaries, backups,
/// set-aside folders and locks that stand next to an output.
fn hidden_sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map_or_else(|| "folder".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{suffix}"))
}

/// `/dev/stdout`, `/proc/self/fd/1` and the like are streams to whatever the
/// shell opened (`>> log.txt`): written in place and appended to, never
/// replaced by a rename.
fn in_place(path: &Path) -> bool {
    path.starts_with("/dev") || path.starts_with("/proc")
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

    /// Two outputs that are one file (a link) are refused, not staged twice;
    /// the lock beside a folder named `.` or `run/` is beside it, not in it.
    #[test]
    fn one_file_is_staged_once_and_locks_sit_beside_their_folder() {
        let dir = tempfile::tempdir().unwrap();
        let (dev, train) = (dir.path().join("dev.jsonl"), dir.path().join("train.jsonl"));
        std::fs::write(&dev, "old").unwrap();
        std::os::unix::fs::symlink(&dev, &train).unwrap();
        let mut staged = Staged::default();
        staged.text(&dev, "new dev").unwrap();
        let err = staged.text(&train, "new train").unwrap_err().to_string();
        assert!(err.contains("written twice in one set"), "{err}");
        drop(staged);
        assert_eq!(std::fs::read_to_string(&dev).unwrap(), "old");
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let lock = lock_beside(&run.join("."), "busy").unwrap();
        assert!(lock.is_some() && dir.path().join(".run.lock").exists());
        assert_eq!(std::fs::read_dir(&run).unwrap().count(), 0, "nothing inside the folder");
        let err = lock_beside(&dir.path().join("run/"), "busy").unwrap_err().to_string();
        assert!(err.ends_with("busy"), "one lock for every name of the folder: {err}");
        drop(lock);
        assert!(dir.path().join(".run.lock").exists(), "kept beside a folder that exists");
    }

    /// A run that ends before its folder is made takes its lock file with it,
    /// and a lock taken afterwards is a fresh one that excludes as before.
    #[test]
    fn a_lock_beside_no_folder_is_removed_when_released() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("never-made");
        let lock = lock_beside(&run, "busy").unwrap();
        assert!(dir.path().join(".never-made.lock").exists());
        assert!(lock_beside(&run, "busy").is_err(), "held");
        drop(lock);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left behind");
        let again = lock_beside(&run, "busy").unwrap();
        assert!(again.is_some() && lock_beside(&run, "busy").is_err());
        drop(again);
        // The folders made to hold it go with it; those that were there stay.
        let deep = dir.path().join("new/deep/run");
        let lock = lock_beside(&deep, "busy").unwrap();
        assert!(dir.path().join("new/deep/.run.lock").exists());
        drop(lock);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no folder left behind");
    }

    /// `/dev/stdout` or `/proc/self/fd/N` redirected to a file (`>> log.txt`)
    /// is appended to in place: the file keeps what it held.
    #[test]
    fn a_descriptor_path_is_appended_to_not_replaced() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.txt");
        std::fs::write(&log, "earlier\n").unwrap();
        let shell = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let fd = PathBuf::from(format!("/proc/self/fd/{}", shell.as_raw_fd()));
        write_text(&fd, "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "earlier\nnew\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary, no rename");
    }

    /// A replaced folder is set aside, not emptied: it comes back if the run
    /// fails, and goes once it is done.
    #[test]
    fn a_replaced_folder_comes_back_if_the_run_fails() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("model"), "old").unwrap();
        let aside = Aside::make(&out, true).unwrap();
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "a new, empty folder");
        std::fs::write(out.join("half"), "new").unwrap();
        aside.settle(false);
        assert_eq!(std::fs::read_to_string(out.join("model")).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing beside it");
        // Done: the old folder goes, by way of `.run.discarded`, which a settle killed midway leaves
        // for the next run to finish deleting; a `.run.replaced` is never half-deleted.
        let aside = Aside::make(&out, true).unwrap();
        std::fs::write(out.join("model"), "new").unwrap();
        aside.settle(true);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing beside it");
        std::fs::create_dir(dir.path().join(".run.discarded")).unwrap();
        Aside::make(&out, true).unwrap().settle(true);
        assert!(!dir.path().join(".run.discarded").exists());
        // Killed once the failed run's folder was discarded and before the old one came back.
        std::fs::rename(&out, dir.path().join(".run.replaced")).unwrap();
        let err = Aside::make(&out, false).err().unwrap().to_string();
        assert!(
            err.contains(&format!("rename {} back to {}", dir.path().join(".run.replaced").display(), out.display())),
            "{err}"
        );
        std::fs::rename(dir.path().join(".run.replaced"), &out).unwrap();
        assert!(!out.join("half").exists());
        let aside = Aside::make(&out, true).unwrap();
        std::fs::write(out.join("model"), "new").unwrap();
        aside.settle(true);
        assert_eq!(std::fs::read_to_string(out.join("model")).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "the old one is gone");
        // One left by a killed run is the user's: never replaced unasked.
        std::fs::create_dir(dir.path().join(".run.replaced")).unwrap();
        let err = Aside::make(&out, true).err().unwrap().to_string();
        assert!(err.contains("did not finish replacing") && err.contains("back to it"), "{err}");
        assert_eq!(std::fs::read_to_string(out.join("model")).unwrap(), "new", "nothing moved");
    }

    /// `--out` a link to a run folder: that folder is set aside and remade
    /// (where the lock is, beside it), and the link keeps naming it.
    #[test]
    fn a_linked_folder_is_replaced_where_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let (target, link) = (dir.path().join("tgt"), dir.path().join("lnk"));
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("model"), "old").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let lock = lock_beside(&link, "busy").unwrap();
        assert!(lock.is_some() && lock_beside(&target, "busy").is_err(), "one lock for both names");
        let aside = Aside::make(&link, true).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(".tgt.replaced/model")).unwrap(), "old");
        std::fs::write(link.join("model"), "new").unwrap();
        aside.settle(true);
        assert_eq!(std::fs::read_to_string(target.join("model")).unwrap(), "new");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert!(!dir.path().join(".tgt.replaced").exists() && !dir.path().join(".lnk.replaced").exists());
    }

    /// A failure while writing any staged file leaves every old file and no
    /// temporary; a commit replaces them all.
    #[test]
    fn staged_files_replace_the_old_ones_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
        std::fs::write(&a, "old a").unwrap();
        std::fs::write(&b, "old b").unwrap();
        let mut staged = Staged::default();
        staged.text(&a, "new a").unwrap();
        let err = staged.file(&b, |_| Err(Error::Other("disk full".into()))).unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        drop(staged);
        assert_eq!(
            (std::fs::read_to_string(&a).unwrap(), std::fs::read_to_string(&b).unwrap()),
            ("old a".into(), "old b".into())
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file is left");
        let mut staged = Staged::default();
        staged.text(&a, "new a").unwrap();
        staged.json(&b, &serde_json::json!({"b": 1})).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a", "nothing is in place before the commit");
        staged.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "{\n  \"b\": 1\n}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        // A rename that fails at the commit (here over a folder) undoes those before it.
        let folder = dir.path().join("c");
        std::fs::create_dir_all(folder.join("inside")).unwrap();
        let mut staged = Staged::default();
        staged.text(&a, "newer a").unwrap();
        staged.text(&folder, "not a folder").unwrap();
        assert!(staged.commit().is_err());
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a", "put back");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3, "no temporary or backup is left");
    }

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

    #[test]
    fn overwrite_replaces_only_its_own_folder_without_inputs_inside() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("data.jsonl"), "x").unwrap();
        fn replace(inputs: &[PathBuf]) -> Option<Replace<'_>> {
            Some(Replace { marker: "train_config.json", inputs })
        }
        let err = prepare_output_dir(&run, replace(&[]), "").unwrap_err().to_string();
        assert!(err.contains("has no train_config.json"), "{err}");
        std::fs::write(run.join("train_config.json"), "{}").unwrap();
        let data = run.join("data.jsonl");
        let err = prepare_output_dir(&run, replace(std::slice::from_ref(&data)), "").unwrap_err().to_string();
        assert!(err.contains("data.jsonl inside it"), "{err}");
        assert!(data.is_file(), "nothing deleted");
        let err = prepare_output_dir(&run, None, "pass --overwrite").unwrap_err().to_string();
        assert!(err.ends_with("exists; pass --overwrite"), "{err}");
        let err = prepare_output_dir(&data, None, "").unwrap_err().to_string();
        assert!(err.ends_with("data.jsonl: not a folder; this names the folder to write"), "{err}");
        let elsewhere = dir.path().join("elsewhere.jsonl");
        prepare_output_dir(&run, replace(&[elsewhere]), "").unwrap();
        assert_eq!(std::fs::read_dir(&run).unwrap().count(), 0, "replaced by an empty folder");
    }

    #[cfg(unix)]
    #[test]
    fn a_writer_with_a_private_temporary_still_gives_the_usual_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let usual = dir.path().join("usual");
        File::create(&usual).unwrap();
        let path = dir.path().join("model.safetensors");
        replace_file(&path, |tmp| {
            let private = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
            private.persist(tmp).unwrap();
            Ok(())
        })
        .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), mode(&usual));
    }

    #[cfg(unix)]
    #[test]
    fn links_and_devices_are_written_through_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("keep.jsonl");
        std::fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_text(&link, "new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        write_text(Path::new("/dev/null"), "nothing").unwrap();
        assert!(!std::fs::metadata("/dev/null").unwrap().is_file(), "/dev/null is still the device");
        // A link to a file not made yet makes that file; one whose folder is missing says which.
        let (later, pending) = (dir.path().join("later.jsonl"), dir.path().join("pending.jsonl"));
        std::os::unix::fs::symlink("later.jsonl", &pending).unwrap();
        write_text(&pending, "made").unwrap();
        assert!(std::fs::symlink_metadata(&pending).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&later).unwrap(), "made");
        let nowhere = dir.path().join("nowhere.jsonl");
        std::os::unix::fs::symlink(dir.path().join("missing/x.jsonl"), &nowhere).unwrap();
        let err = write_text(&nowhere, "lost").unwrap_err().to_string();
        assert!(
            err.contains("missing") && std::fs::symlink_metadata(&nowhere).unwrap().file_type().is_symlink(),
            "{err}"
        );
        // Links that name each other are written in place of the first, as before, not followed forever.
        let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
        std::os::unix::fs::symlink("b.jsonl", &a).unwrap();
        std::os::unix::fs::symlink("a.jsonl", &b).unwrap();
        write_text(&a, "loop").unwrap();
    }

    #[test]
    fn an_output_that_is_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        std::fs::write(&input, "x").unwrap();
        let other_name = dir.path().join(".").join("in.jsonl");
        let err = check_not_an_input(&other_name, "--output", [&input]).unwrap_err().to_string();
        assert!(err.contains("is the input"), "{err}");
        check_not_an_input(&dir.path().join("new.jsonl"), "--output", [&input]).unwrap();
        check_not_an_input(Path::new("/dev/null"), "--output", ["/dev/null"]).unwrap();
        let model = dir.path().join("run");
        std::fs::create_dir(&model).unwrap();
        let err = check_not_an_input(&model.join("config.json"), "--output", [&model]).unwrap_err();
        assert!(err.to_string().contains("is the input"), "inside a model's folder: {err}");
    }
}
