//! End-to-end tests of Kith: the operator reconciling `ProfilePipeline`s on
//! the real API server of `tests/services`, and real `kith-runner` processes
//! running what it deploys, against real Kafka and moto S3.
//!
//! The test control plane has an API server and etcd but no kubelet and no
//! Deployment controller, so nothing would ever run the operator's
//! Deployments. [`kubelet`] stands in for both: it turns each runner
//! Deployment into local processes started the way a kubelet starts the
//! pod's container, and reports them back in the Deployment's status. The
//! scenarios are in `tests/lifecycle.rs`; `make e2e` runs them.

pub mod kubelet;
