//! What the fuzz targets share: the small snapshot they ask questions of.

use ticket_authz::dataset;
use ticket_authz::model::Dataset;
use ticket_authz::snapshot::Snapshot;

/// The example helpdesk of `examples/demo.yaml` and its snapshot, built as
/// `serve --data` builds a dataset file. `None` only if the example itself
/// is broken, which its own tests catch.
pub fn demo() -> Option<(Dataset, Snapshot)> {
    let loaded = dataset::load_str("demo.yaml", include_str!("../../examples/demo.yaml")).ok()?;
    let snapshot = Snapshot::build(&loaded.dataset).ok()?;
    Some((loaded.dataset, snapshot))
}

/// The small service desk of `examples/sections.yaml` (every section of
/// access model §8) and its snapshot; `None` as for [`demo`].
pub fn sections() -> Option<(Dataset, Snapshot)> {
    let loaded = dataset::load_str(
        "sections.yaml",
        include_str!("../../examples/sections.yaml"),
    )
    .ok()?;
    let snapshot = Snapshot::build(&loaded.dataset).ok()?;
    Some((loaded.dataset, snapshot))
}

/// Whether the data has the user at all, and whether it is not suspended
/// (read from the dataset, not from the snapshot the decisions read).
pub fn user_state(data: &Dataset, id: &str) -> Option<bool> {
    data.users.iter().find(|u| u.id == id).map(|u| !u.suspended)
}
