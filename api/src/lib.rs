//! Types shared by the Kith operator and runner.
//!
//! This crate holds the declarative pipeline specification (what product teams
//! write) and the Kubernetes custom resources that embed it. It must stay free
//! of heavy dependencies: it only describes data (kube's derive and k8s-openapi
//! types, no client); validation into typed, executable values happens in the
//! runner.

pub mod crd;
pub mod pipeline;
pub mod reference;

pub use pipeline::PipelineSpec;
