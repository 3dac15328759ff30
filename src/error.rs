//! Library error type. The CLI wraps it with `anyhow` at the edge.

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
        write!(f, "{}:{}: {}: {}", self.file, self.line, self.field, self.message)
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

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
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
