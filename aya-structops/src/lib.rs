//! Placeholder; filled in below.
pub mod btf;
pub(crate) mod sys;
