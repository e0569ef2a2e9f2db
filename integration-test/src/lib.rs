//! Integration tests for aya-structops; run through `cargo xtask integration-test`.
