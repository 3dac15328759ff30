//! Running a model over many inputs: streamed stance prediction
//! ([`predict`]) and sentence embeddings ([`embed`]).

pub mod embed;
pub mod predict;
