//! Helpers shared by the integration tests. Each test binary includes this
//! with `mod support;` and uses only part of it.
#![allow(dead_code)]

#[path = "../../../operator/tests/support/cluster.rs"]
pub mod cluster;
pub mod dynamodb;
pub mod faults;
pub mod feed;
pub mod gremlin;
pub mod kafka;
pub mod moto;
pub mod runner;
pub mod services;
