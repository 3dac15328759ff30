//! Labelled records: reading, validating and splitting them.
