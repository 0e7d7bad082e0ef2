//! One holder at a time, with a `coordination.k8s.io/v1` Lease: the writer
//! of a pipeline's state (its runners contend for `NAME-runner`) and the
//! operator's leader. Both need the same thing: a process that acts only
//! while it holds the Lease, that stops acting before anyone else may take
//! it over, and that gives it up on a clean stop so a successor starts at
//! once.
//!
//! - [`Fence`]: the local deadline (`held()`), asked before every act;
//! - [`hold`]: the task that takes and renews the Lease and moves the fence;
//!   it returns, with the fence lost for good, when a renewal misses its
//!   deadline or someone else took the Lease over;
//! - [`release`]: gives it up.
//!
//! A contender takes a Lease over only after seeing its record unchanged for
//! the lease duration by its own clock, as client-go's leader election does,
//! so clock skew between machines does not matter; writes carry the
//! resourceVersion read, so two contenders never both win.

mod fence;
mod holder;

pub use fence::{Fence, Timing};
pub use holder::{hold, release, Lost};
