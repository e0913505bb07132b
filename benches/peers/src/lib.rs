//! Peer engines on the same rules and data as the decision core: the ticket
//! `view` and `comment` rules of the access model written in Cedar and in
//! Rego (regorus, compiled VM), the generated dataset translated for each,
//! the compared questions, and the check that all three engines agree.
//!
//! A separate workspace member, so that `cargo test` at the root never
//! builds the peers; `benches/compare.rs` times them.

pub mod agree;
pub mod cedar;
pub mod facts;
pub mod listing;
pub mod ours;
pub mod probes;
pub mod rego;

pub use agree::{Disagreement, Tally, agree_on_checks, agree_on_list};
pub use cedar::CedarPeer;
pub use facts::Facts;
pub use listing::PeerList;
pub use probes::{Kind, Probe, sample};
pub use rego::RegoPeer;

/// What can go wrong building the peers or comparing their answers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cedar: {0}")]
    Cedar(String),
    #[error("rego: {0}")]
    Rego(String),
    #[error("decision core: {0}")]
    Core(String),
    #[error("{0}")]
    Disagreement(Box<Disagreement>),
}
