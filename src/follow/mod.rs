//! Following a source of changes into the [`Store`](crate::store::Store):
//! the [`ChangeSource`] seam every source implements (our own schema on
//! PostgreSQL and SQLite today) and the one sync loop that reads its
//! batches, applies them on a clone of the served snapshot or reloads in
//! full, holds back what does not validate, and publishes once per batch.

mod source;
mod sync;
mod warm;

pub use source::{Batch, ChangeSource, Reload, SourceError};
pub(crate) use sync::apply_owned;
pub use sync::follow;
pub use warm::{Expected, SNAPSHOT_FILE, WarmStart};
