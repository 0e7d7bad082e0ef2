//! The Kith operator: reconciles `ProfilePipeline` resources into the
//! Kubernetes objects that run them (docs/design.md §6).
//!
//! `validate` checks a pipeline with the runner's own rules (kith-pipeline); `build` turns it
//! into the desired objects (pure); `controller` runs the reconcile loop (apply,
//! upgrades, scheduled snapshots, status, events, finalizer); `status`
//! computes conditions; `leader` elects
//! one active replica; `admin` and `metrics` serve Prometheus and the probes;
//! `crdgen` writes the CRD manifests.

pub mod admin;
pub mod build;
pub mod controller;
pub mod crdgen;
pub mod error;
pub mod leader;
pub mod metrics;
pub mod status;
pub mod validate;
