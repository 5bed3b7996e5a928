//! Shared helpers for the integration tests. Each test crate uses a subset of them.
#![allow(dead_code)]

pub mod kube;
pub mod output;
pub mod run;
pub mod vault;
