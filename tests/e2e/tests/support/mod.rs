//! What the scenarios share: the test services and kubectl helpers of the
//! runner's and operator's tests, and [`stack::Stack`], one scenario's
//! operator, kubelet stand-in, topic and bucket.
#![allow(dead_code)]

#[path = "../../../../operator/tests/support/cluster.rs"]
pub mod cluster;
pub mod dashboard;
pub mod fresh;
#[path = "../../../../runner/tests/support/kafka.rs"]
pub mod kafka;
#[path = "../../../../runner/tests/support/moto.rs"]
pub mod moto;
#[path = "../../../../operator/tests/support/operator.rs"]
pub mod operator;
pub mod producer;
#[path = "../../../../runner/tests/support/runner.rs"]
pub mod runner;
#[path = "../../../../runner/tests/support/services.rs"]
pub mod services;
pub mod stack;

#[path = "../../../../runner/tests/support/poll.rs"]
mod poll;
pub use poll::eventually;
