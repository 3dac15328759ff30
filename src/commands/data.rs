//! `stancekit data check` and `stancekit data split`: their options and their work
//! (`data clean` is [`super::clean`]).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{kfold_grouped, load, split_grouped, Counts, Format, Record, Schema};
use crate::error::{Error, Result};

/// How TweetEval inputs may be narrowed; shared by the commands' help.
pub(crate) const INPUT_HELP: &str = "Input files or folders. A TweetEval stance folder (the root with mapping.txt, \
    or one target folder) may end in a split suffix: PATH:train, PATH:val, PATH:test, or a comma list \
    such as PATH:train,val; without one, every split loads";

/// Validate labelled files against the targets file and count their records.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct CheckConfig {
    #[arg(required = true, value_name = "FILE", help = INPUT_HELP)]
    pub files: Vec<String>,
    /// Targets file: the allowed labels and the target ids with their descriptions.
    #[arg(long, value_name = "FILE", default_value = "datasets/targets.json")]
    pub targets: PathBuf,
    /// Input format; by default it follows from each path (folder: tweeteval; .jsonl, .csv;
    /// .tsv/.txt: semeval if the header is ID, Target, Tweet, Stance, else tsv).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

/// Split labelled files into train/dev/test (or k folds), keeping each sentence's
/// records together and the label mix even.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct SplitConfig {
    #[arg(required = true, value_name = "FILE", help = INPUT_HELP)]
    pub files: Vec<String>,
    /// Output folder, created if missing.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Fraction of sentences for dev.jsonl.
    #[arg(long, default_value_t = 0.15)]
    pub dev: f64,
    /// Fraction of sentences for test.jsonl (0 writes none).
    #[arg(long, default_value_t = 0.0)]
    pub test: f64,
    /// Write K cross-validation folds (fold-1/ .. fold-K/, each with train.jsonl and test.jsonl)
    /// instead of one split.
    #[arg(long, value_name = "K", conflicts_with_all = ["dev", "test"])]
    pub folds: Option<usize>,
    /// Seed of the shuffle; the same inputs and seed give the same split on every platform.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Targets file: the allowed labels and the target ids with their descriptions.
    #[arg(long, value_name = "FILE", default_value = "datasets/targets.json")]
    pub targets: PathBuf,
    /// Input format; by default it follows from each path.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Replace existing output files.
    #[arg(long)]
    pub overwrite: bool,
}

/// Counts per input and in total, and any warnings.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub files: Vec<(String, Counts)>,
    pub total: Counts,
    pub warnings: Vec<String>,
}

/// Validates every input; fails with every problem of every input.
pub fn check(config: &CheckConfig) -> Result<CheckReport> {
    let schema = Schema::load(&config.targets)?;
    let data = load(&config.files, config.format, &schema)?;
    let files = data
        .files
        .iter()
        .map(|f| (f.name.clone(), Counts::new(&schema.labels, f.entries.iter().map(|e| &e.record))))
        .collect();
    let warnings = schema.warnings().into_iter().chain(data.warnings()).collect();
    Ok(CheckReport { files, total: Counts::new(&schema.labels, data.records()), warnings })
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, counts) in &self.files {
            writeln!(f, "== {name}\n{counts}")?;
        }
        if self.files.len() > 1 {
            writeln!(f, "== all {} inputs\n{}", self.files.len(), self.total)?;
        }
        write!(f, "{} records, {} distinct sentences", self.total.records(), self.total.sentences())
    }
}

/// The files written, with their counts, and any warnings.
#[derive(Debug, Clone)]
pub struct SplitReport {
    pub written: Vec<(PathBuf, Counts)>,
    pub warnings: Vec<String>,
}

/// Loads, splits and writes; refuses to replace files unless told to.
pub fn split(config: &SplitConfig) -> Result<SplitReport> {
    let schema = Schema::load(&config.targets)?;
    let data = load(&config.files, config.format, &schema)?;
    let warnings = data.warnings();
    let records = data.into_records();
    if records.is_empty() {
        return Err(Error::Other("no records to split".into()));
    }
    if std::fs::metadata(&config.out).is_ok_and(|m| !m.is_dir()) {
        let out = config.out.display();
        return Err(Error::Other(format!("{out}: not a folder; --out names the folder to write the parts in")));
    }
    let (plan, stale) = plan(config, &records)?;
    let mut warnings = warnings;
    warnings.extend(parts_left_empty(config, &plan, &records)?);
    let inputs: Vec<PathBuf> = config.files.iter().map(|f| crate::data::Input::parse(f).path).collect();
    // Stale files are removed: an input among them must stop the run as one written would.
    for path in plan.iter().map(|(p, _)| p).chain(&stale) {
        crate::io::check_not_an_input(path, "--out", &inputs)?;
    }
    refuse_to_clobber(
        config.overwrite,
        plan.iter().map(|(p, _)| p.as_path()).chain(stale.iter().map(PathBuf::as_path)),
    )?;
    // Every part is written before any replaces its old self, and the stale ones go last: a
    // failure (a full disk) leaves the old split whole, not a new train beside an old dev.
    let mut staged = crate::io::Staged::default();
    let mut written = Vec::new();
    for (path, indices) in plan {
        let part: Vec<&Record> = indices.iter().filter_map(|&i| records.get(i)).collect();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        staged
            .file(&path, |w| crate::io::write_json_lines(w, part.iter().copied()).map_err(|e| Error::io(&path, e)))?;
        written.push((path, Counts::new(&schema.labels, part)));
    }
    staged.commit()?;
    for path in &stale {
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
        // A stale fold's folder goes with its files (a folder holding anything else stays); `--out` itself stays.
        let _ = path.parent().filter(|dir| *dir != config.out).map(std::fs::remove_dir);
    }
    Ok(SplitReport { written, warnings })
}

type Plan = Vec<(PathBuf, Vec<usize>)>;

/// The files to write with the record indices of each, and existing part files
/// this run would leave behind (a stale test.jsonl from an earlier run would mislead).
fn plan(config: &SplitConfig, records: &[Record]) -> Result<(Plan, Vec<PathBuf>)> {
    let out = &config.out;
    if let Some(k) = config.folds {
        let folds = kfold_grouped(records, k, config.seed)?;
        let plan = folds
            .into_iter()
            .enumerate()
            .flat_map(|(i, fold)| {
                let dir = out.join(format!("fold-{}", i + 1));
                [(dir.join("train.jsonl"), fold.train), (dir.join("test.jsonl"), fold.test)]
            })
            .collect();
        // Folds past k from an earlier split into more: as stale as a left-over
        // test.jsonl, and so is a plain split's train/dev/test beside the folds.
        let stale = fold_files(out, k + 1).chain(PARTS.map(|part| out.join(format!("{part}.jsonl"))));
        return Ok((plan, stale.filter(|p| p.exists()).collect()));
    }
    let parts = split_grouped(records, config.dev, config.test, config.seed)?;
    let (plan, empty): (Plan, Plan) = PARTS
        .into_iter()
        .zip([parts.train, parts.dev, parts.test])
        .map(|(name, indices)| (out.join(format!("{name}.jsonl")), indices))
        .partition(|(_, indices)| !indices.is_empty());
    // An earlier split into folds is as stale beside a plain split.
    let stale = empty.into_iter().map(|(path, _)| path).chain(fold_files(out, 1));
    Ok((plan, stale.filter(|p| p.exists()).collect()))
}

/// The parts of a plain split.
const PARTS: [&str; 3] = ["train", "dev", "test"];

/// A plain split's parts that were asked for but got no sentence (too few
/// sentences for the shares), which are not written: an error for train, a
/// warning for dev and test.
fn parts_left_empty(config: &SplitConfig, plan: &Plan, records: &[Record]) -> Result<Vec<String>> {
    if config.folds.is_some() {
        return Ok(Vec::new());
    }
    let sentences = crate::data::count_sentences(records);
    let shares = [1.0 - config.dev - config.test, config.dev, config.test];
    let mut warnings = Vec::new();
    for (name, share) in PARTS.into_iter().zip(shares) {
        let path = config.out.join(format!("{name}.jsonl"));
        if share <= 0.0 || plan.iter().any(|(p, _)| *p == path) {
            continue;
        }
        let why =
            format!("{name} gets none of the {sentences} sentence(s) at --dev {} --test {}", config.dev, config.test);
        if name == "train" {
            return Err(Error::Other(format!("{why}: lower --dev or --test, or split more data")));
        }
        warnings.push(format!("{why}: {} is not written", path.display()));
    }
    Ok(warnings)
}

/// The files of the folds `from`, `from + 1`, … that exist as folders in `out`.
fn fold_files(out: &Path, from: usize) -> impl Iterator<Item = PathBuf> + '_ {
    let dirs = (from..).map(move |i| out.join(format!("fold-{i}"))).take_while(|dir| dir.is_dir());
    dirs.flat_map(|dir| ["train.jsonl", "test.jsonl"].map(|f| dir.join(f)))
}

fn refuse_to_clobber<'a>(overwrite: bool, paths: impl Iterator<Item = &'a Path>) -> Result<()> {
    let existing: Vec<String> = paths.filter(|p| p.exists()).map(|p| p.display().to_string()).collect();
    if overwrite || existing.is_empty() {
        return Ok(());
    }
    Err(Error::Other(format!("not replacing existing {} (pass --overwrite to replace)", existing.join(", "))))
}

impl fmt::Display for SplitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (path, counts)) in self.written.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "== {}\n{counts}", path.display())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tests::write;

    fn config(dir: &Path) -> SplitConfig {
        let targets = write(dir, "targets.json", r#"{"targets": {"nato": "Ukraine joining NATO"}}"#);
        let body: String = (0..40)
            .map(|i| format!("{{\"text\":\"s{i}\",\"target\":\"nato\",\"label\":\"{}\"}}\n", ["favor", "none"][i % 2]))
            .collect();
        let input = write(dir, "in.jsonl", body);
        SplitConfig {
            files: vec![input],
            out: dir.join("out"),
            dev: 0.25,
            test: 0.25,
            folds: None,
            seed: 42,
            targets: targets.into(),
            format: None,
            overwrite: false,
        }
    }

    #[test]
    fn writes_parts_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        let report = split(&config).unwrap();
        let sizes: Vec<usize> = report.written.iter().map(|(_, c)| c.records()).collect();
        assert_eq!(sizes, [20, 10, 10]);
        let err = split(&config).unwrap_err().to_string();
        assert!(err.contains("not replacing existing") && err.contains("--overwrite"), "{err}");
        config.overwrite = true;
        config.test = 0.0;
        split(&config).unwrap();
        assert!(!config.out.join("test.jsonl").exists(), "a stale test.jsonl is removed");
    }

    #[test]
    fn writes_folds() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        config.folds = Some(4);
        let report = split(&config).unwrap();
        assert_eq!(report.written.len(), 8);
        let test = std::fs::read_to_string(config.out.join("fold-4/test.jsonl")).unwrap();
        assert_eq!(test.lines().count(), 10);
    }

    /// One layout replaces the other: folds over a plain split remove its
    /// train/dev/test, a plain split over folds removes the folds, and a part
    /// that is an input stops the run before anything is removed.
    #[test]
    fn overwrite_removes_the_other_layout() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        split(&config).unwrap();
        (config.folds, config.overwrite) = (Some(3), true);
        split(&config).unwrap();
        let names = |out: &Path| {
            let mut names: Vec<String> =
                std::fs::read_dir(out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
            names.sort();
            names
        };
        assert_eq!(names(&config.out), ["fold-1", "fold-2", "fold-3"]);
        config.folds = None;
        split(&config).unwrap();
        assert_eq!(names(&config.out), ["dev.jsonl", "test.jsonl", "train.jsonl"]);
        let input = config.out.join("train.jsonl");
        let kept = std::fs::read_to_string(&input).unwrap();
        (config.files, config.folds) = (vec![input.to_str().unwrap().to_string()], Some(2));
        let err = split(&config).unwrap_err().to_string();
        assert!(err.contains("--out"), "{err}");
        assert_eq!(std::fs::read_to_string(&input).unwrap(), kept, "the input is untouched");
    }

    #[test]
    fn split_output_reads_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        split(&config).unwrap();
        let schema = Schema::load(&config.targets).unwrap();
        let parts: Vec<String> = ["train", "dev", "test"]
            .iter()
            .map(|p| config.out.join(format!("{p}.jsonl")).display().to_string())
            .collect();
        let mut back = crate::data::load_records(&parts, None, &schema).unwrap();
        let mut original = crate::data::load_records(&config.files, None, &schema).unwrap();
        back.sort_by(|a, b| a.text.cmp(&b.text));
        original.sort_by(|a, b| a.text.cmp(&b.text));
        assert_eq!(back, original);
    }
}
