//! Shared helpers for the integration tests. Each test crate uses a subset of them.
#![allow(dead_code)]

pub mod azure;
#[cfg(feature = "gcp")]
pub mod gcp;
pub mod http;
pub mod ibm;
pub mod kube;
#[cfg(feature = "aws")]
pub mod moto;
pub mod onepassword;
pub mod output;
pub mod proxy;
pub mod run;
pub mod vault;
