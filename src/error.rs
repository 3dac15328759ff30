//! Library error type. The CLI wraps it with `anyhow` at the edge.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

/// One problem found in an input file, located precisely enough for a user to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based line number; 0 when the problem concerns the whole file.
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(file: &str, line: usize, field: &str, message: impl Into<String>) -> Self {
        Problem { file: file.to_string(), line, field: field.to_string(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0 is the file as a whole: no line to name, as compilers print it.
        match self.line {
            0 => write!(f, "{}: {}: {}", self.file, self.field, self.message),
            line => write!(f, "{}:{line}: {}: {}", self.file, self.field, self.message),
        }
    }
}

/// Every problem of a rejected input, so a user sees them all in one run.
#[derive(Debug, Clone, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// `value` when nothing was found, else the error naming every problem.
    pub fn or_ok<T>(problems: Vec<Problem>, value: T) -> Result<T> {
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(Error::Invalid(Problems(problems)))
        }
    }

    /// A reader's result, with its problems moved into `found` (`Ok(None)`)
    /// so that reading goes on and every problem is shown at the end; any
    /// other error stops reading.
    pub fn gather<T>(result: Result<T>, found: &mut Vec<Problem>) -> Result<Option<T>> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(Error::Invalid(Problems(problems))) => {
                found.extend(problems);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// At most this many distinct problems are listed; a last line counts the rest.
const LISTED: usize = 50;
/// Line numbers shown for a problem that repeats on other lines.
const REPEATS_LISTED: usize = 8;

/// The problems grouped by file, field and message, in order of first
/// appearance, each with the lines it repeats on: one file with a wrong target
/// on every line is one problem to fix, not thousands of lines to scroll past.
fn grouped(problems: &[Problem]) -> Vec<(&Problem, Vec<usize>)> {
    let mut groups: Vec<(&Problem, Vec<usize>)> = Vec::new();
    let mut index: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for p in problems {
        let key = (p.file.as_str(), p.field.as_str(), p.message.as_str());
        match index.get(&key) {
            Some(&g) => groups[g].1.push(p.line),
            None => {
                index.insert(key, groups.len());
                groups.push((p, Vec::new()));
            }
        }
    }
    groups
}

/// The note after a repeated problem: its other lines, or (for a problem of
/// the whole file, line 0) how many times more.
fn repeats_note(first: &Problem, repeats: &[usize]) -> String {
    if first.line == 0 {
        return format!("(the same {} more time(s))", repeats.len());
    }
    let shown: Vec<String> = repeats.iter().take(REPEATS_LISTED).map(ToString::to_string).collect();
    let more = if repeats.len() > REPEATS_LISTED { ", ..." } else { "" };
    format!("(the same on {} more line(s): {}{more})", repeats.len(), shown.join(", "))
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups = grouped(&self.0);
        for (i, (p, repeats)) in groups.iter().take(LISTED).enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
            if !repeats.is_empty() {
                write!(f, "\n  {}", repeats_note(p, repeats))?;
            }
        }
        if groups.len() > LISTED {
            let rest: usize = groups[LISTED..].iter().map(|(_, r)| 1 + r.len()).sum();
            write!(f, "\n... and {rest} more problem(s) not listed")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid input ({count} problem(s)):\n{0}", count = .0 .0.len())]
    Invalid(Problems),
    #[error("model: {0}")]
    Model(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Other(String),
}

/// A single problem rejects an input just as a list of them does.
impl From<Problem> for Error {
    fn from(problem: Problem) -> Self {
        Error::Invalid(Problems(vec![problem]))
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(line: usize, message: &str) -> Problem {
        Problem::new("f.jsonl", line, "target", message)
    }

    #[test]
    fn a_problem_on_many_lines_is_listed_once_with_its_lines() {
        let mut all: Vec<Problem> = (1..=12).map(|l| problem(l, "unknown target 'a'")).collect();
        all.insert(3, problem(4, "unknown target 'b'"));
        let text = Error::Invalid(Problems(all)).to_string();
        let expected = "invalid input (13 problem(s)):\n\
            f.jsonl:1: target: unknown target 'a'\n  (the same on 11 more line(s): 2, 3, 4, 5, 6, 7, 8, 9, ...)\n\
            f.jsonl:4: target: unknown target 'b'";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_whole_file_problem_repeated_is_counted_not_given_lines() {
        let same = Problem::new("p.jsonl", 0, "missing", "no prediction for gold record 'x'");
        let text = Problems(vec![same.clone(), same]).to_string();
        assert_eq!(text, "p.jsonl: missing: no prediction for gold record 'x'\n  (the same 1 more time(s))");
    }

    #[test]
    fn problems_past_the_listed_ones_are_counted() {
        let all: Vec<Problem> = (1..=LISTED + 3).map(|l| problem(l, &format!("bad value {l}"))).collect();
        let text = Problems(all).to_string();
        assert_eq!(text.lines().count(), LISTED + 1);
        assert!(text.ends_with("\n... and 3 more problem(s) not listed"), "{text}");
        assert!(text.starts_with("f.jsonl:1: target: bad value 1\n"), "{text}");
    }
}
