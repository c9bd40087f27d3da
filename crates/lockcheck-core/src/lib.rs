//! The lock-order model shared by lockcheck's runtime (`lockcheck`) and its analyzer
//! (`lockcheck analyze`).
//!
//! Arrows point one way: the CLI and the runtime depend on this crate, it depends on neither.
//!
//! - [`trace`]: the versioned event model of a lock trace and its JSON-lines encoding (written
//!   by hand; reading it needs the `serde` feature, which only the analyzer enables, so that the
//!   runtime crate users depend on pulls in no serde).
//! - [`deps`]: lock dependencies (thread, lock, held set, mode) and the rules that decide whether a
//!   cycle of them is a feasible deadlock (the iGoodLock rules: distinct threads, disjoint held sets,
//!   concurrent under fork/join, conflicting modes, blocking acquisitions).
//! - [`order`]: an incremental topological order (Pearce–Kelly) that answers "does this new edge
//!   close a cycle?" without a search for edges that agree with the current order.
//!
//! ```
//! use lockcheck_core::order::OrderGraph;
//! let mut g = OrderGraph::new();
//! let (a, b) = (g.add_node(), g.add_node());
//! assert!(g.add_edge(a, b).is_none());
//! let cycle = g.add_edge(b, a).expect("b -> a closes a cycle");
//! assert_eq!(cycle, vec![a, b]);
//! ```
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

pub mod deps;
mod json;
pub mod lct;
pub mod order;
pub mod trace;
