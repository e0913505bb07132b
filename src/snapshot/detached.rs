//! Ticket rows that live outside the snapshot (read through a cache, or
//! sent with the question), resolved against its handles so that the
//! decision core treats them exactly like its own rows.

use std::sync::atomic::{AtomicU64, Ordering};

use compact_str::CompactString;

use super::{NONE, Snapshot, Table, TicketPeople, TicketRow, UNKNOWN};
use crate::model::Status;
use crate::time::Timestamp;

/// A ticket's attributes by id, as a cache or a caller holds them.
#[derive(Debug, Clone, Copy)]
pub struct TicketFacts<'a, S: AsRef<str> = String> {
    pub id: &'a str,
    /// Only ticket limits read it; unknown is the epoch.
    pub created_at: Option<Timestamp>,
    pub requester: &'a str,
    pub organisation: Option<&'a str>,
    pub group: Option<&'a str>,
    pub assignee: Option<&'a str>,
    pub status: Status,
    pub ccs: &'a [S],
    pub participants: &'a [S],
}

/// Which ids a detached row's handles were resolved to. Two snapshots
/// with equal epochs resolve every user, organisation and group id to the
/// same handle, so a row resolved against one is the row the other would
/// resolve: handles are stable within a full build's lineage (copy-on-write
/// applies keep them; only a new build renumbers), an id gets a new slot
/// whenever it is pushed and loses its handle whenever it is removed, and
/// slots only grow, so any push or removal changes a table's (slots, live)
/// pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleEpoch {
    lineage: u64,
    counts: [(usize, usize); 3],
}

static LINEAGES: AtomicU64 = AtomicU64::new(1);

/// A lineage no other build of this process has.
pub(super) fn next_lineage() -> u64 {
    LINEAGES.fetch_add(1, Ordering::Relaxed)
}

fn counts<R: super::Keyed>(table: &Table<R>) -> (usize, usize) {
    (table.slots(), table.len())
}

impl Snapshot {
    /// The epoch of this snapshot's id resolution (see [`HandleEpoch`]).
    pub fn handle_epoch(&self) -> HandleEpoch {
        HandleEpoch {
            lineage: self.lineage,
            counts: [
                counts(&self.users),
                counts(&self.orgs),
                counts(&self.groups),
            ],
        }
    }

    /// The row of a ticket this snapshot does not hold. Ids the snapshot
    /// does not know become [`UNKNOWN`], which equals no handle: an unknown
    /// requester or assignee is someone, but no user asking; an unknown
    /// organisation has no members; an unknown group has no grants of its
    /// own (grants on `*` cover every group, this one too). Unknown CCs and
    /// participants are left out.
    pub fn detached_ticket<S: AsRef<str>>(&self, t: &TicketFacts<'_, S>) -> TicketRow {
        let user = |id: &str| self.users.lookup(id).unwrap_or(UNKNOWN);
        let people = |ids: &[S]| -> Vec<_> {
            let mut handles: Vec<_> = ids
                .iter()
                .filter_map(|id| self.users.lookup(id.as_ref()))
                .collect();
            handles.sort_unstable();
            handles.dedup();
            handles
        };
        let (ccs, participants) = (people(t.ccs), people(t.participants));
        TicketRow {
            id: CompactString::from(t.id),
            created_at: t.created_at.unwrap_or(Timestamp::from_nanos(0)),
            requester: user(t.requester),
            organisation: t
                .organisation
                .map_or(NONE, |o| self.orgs.lookup(o).unwrap_or(UNKNOWN)),
            group: t
                .group
                .map_or(NONE, |g| self.groups.lookup(g).unwrap_or(UNKNOWN)),
            assignee: t.assignee.map_or(NONE, user),
            status: t.status,
            people: (!ccs.is_empty() || !participants.is_empty())
                .then(|| Box::new(TicketPeople { ccs, participants })),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::generate::{Spec, generate};
    use crate::snapshot::{Change, UserFields};

    fn fields(id: &str, name: &str) -> UserFields {
        UserFields {
            id: id.to_owned(),
            email: None,
            name: Some(name.to_owned()),
            created_at: Timestamp::from_nanos(0),
            kind: crate::model::UserKind::EndUser,
            suspended: false,
            ticket_access: crate::model::UserAccess::Own,
            default_organisation: None,
            company: None,
            company_scoped: false,
        }
    }

    /// The ticket cache keeps rows resolved at one epoch: every change
    /// that could resolve an id to another handle must move it.
    #[test]
    fn the_epoch_moves_exactly_when_an_id_could_resolve_differently() {
        let data = generate(&Spec {
            users: 30,
            organisations: 3,
            companies: 2,
            groups: 3,
            profiles: 2,
            tickets: 20,
            seed: 3,
        });
        let mut snap = Snapshot::build(&data).unwrap();
        let start = snap.handle_epoch();
        assert_eq!(snap.clone().handle_epoch(), start, "a clone keeps it");
        let ticket = data.tickets[0].id.clone();
        snap.apply(&Change::DeleteTicket { id: ticket }).unwrap();
        snap.apply(&Change::UpsertUser(fields(&data.users[0].id, "renamed")))
            .unwrap();
        assert_eq!(snap.handle_epoch(), start, "no id gained or lost a handle");

        snap.apply(&Change::UpsertUser(fields("newcomer", "N")))
            .unwrap();
        let added = snap.handle_epoch();
        assert_ne!(added, start, "a new user");
        snap.apply(&Change::DeleteUser {
            id: "newcomer".to_owned(),
        })
        .unwrap();
        assert_ne!(snap.handle_epoch(), added, "a removed user");
        assert_ne!(snap.handle_epoch(), start, "added and removed again");

        let rebuilt = Snapshot::build(&data).unwrap();
        assert_ne!(rebuilt.handle_epoch(), start, "a new build renumbers");
    }
}
