//! Sentence embeddings with BERT-family encoders (all-MiniLM-L6-v2 and kin).

pub mod bert;
mod encoder;
mod ops;
mod qgemm;
