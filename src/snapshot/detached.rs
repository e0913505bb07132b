//! Ticket rows that live outside the snapshot (read through a cache, or
//! sent with the question), resolved against its handles so that the
//! decision core treats them exactly like its own rows.

use compact_str::CompactString;

use super::{NONE, Snapshot, TicketPeople, TicketRow, UNKNOWN};
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

impl Snapshot {
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
