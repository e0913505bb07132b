//! One-row changes applied to a snapshot in place: tickets, CCs and
//! participants. Each touches only the postings of that ticket, copying the
//! chunks it writes (the previous snapshot keeps its own).

use smallvec::SmallVec;

use super::{Idx, NONE, RequesterTime, Snapshot, TicketPeople, TicketRow};
use crate::model::Status;
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("ticket `{ticket}`: field {field}: unknown {target} `{value}`")]
    Dangling {
        ticket: String,
        field: &'static str,
        target: &'static str,
        value: String,
    },
    #[error("{table}: {message}")]
    Row { table: String, message: String },
}

/// A ticket row as stored (CCs and participants are rows of their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFields {
    pub id: String,
    pub created_at: Timestamp,
    pub requester: String,
    pub organisation: Option<String>,
    pub group: Option<String>,
    pub assignee: Option<String>,
    pub status: Status,
}

/// Which list of a ticket a person is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Cc,
    Participant,
}

impl Snapshot {
    /// Adds the ticket's postings (`add`) or removes them.
    fn ticket_postings(&mut self, idx: Idx, add: bool) {
        let Snapshot {
            tickets,
            users,
            orgs,
            groups,
            companies,
            ..
        } = self;
        let tickets = &*tickets;
        let row: &TicketRow = &tickets[idx];
        let by_id = |a: &Idx, b: &Idx| tickets.id(*a).cmp(tickets.id(*b));
        let mut people: SmallVec<[Idx; 4]> = [row.requester, row.assignee]
            .into_iter()
            .chain(row.ccs().iter().copied())
            .chain(row.participants().iter().copied())
            .filter(|u| *u != NONE)
            .collect();
        people.sort_unstable();
        people.dedup();
        for u in people {
            if let Some(user) = users.row_mut(u) {
                if add {
                    user.involved.insert_unique(idx, by_id);
                } else {
                    user.involved.remove(&idx, by_id);
                }
            }
        }
        // `row_mut(NONE)` is `None`: tickets without an organisation skip this.
        if let Some(org) = orgs.row_mut(row.organisation) {
            if add {
                org.tickets.insert_unique(idx, by_id);
            } else {
                org.tickets.remove(&idx, by_id);
            }
        }
        let company = users[row.requester].company;
        if let Some(c) = companies.row_mut(company) {
            if add {
                c.requested.insert_unique(idx, by_id);
            } else {
                c.requested.remove(&idx, by_id);
            }
        }
        if let Some(g) = groups.row_mut(row.group) {
            let time = row.created_at.nanos();
            let key = RequesterTime::new(row.requester, time);
            let open = row.status.is_open();
            if add {
                g.tickets.insert_unique(idx, by_id);
                g.limits.all.insert(time, i64::cmp);
                g.limits.by_requester.insert(key, RequesterTime::cmp);
                if open {
                    g.limits.open.insert(time, i64::cmp);
                    g.limits.open_by_requester.insert(key, RequesterTime::cmp);
                }
            } else {
                g.tickets.remove(&idx, by_id);
                g.limits.all.remove(&time, i64::cmp);
                g.limits.by_requester.remove(&key, RequesterTime::cmp);
                if open {
                    g.limits.open.remove(&time, i64::cmp);
                    g.limits.open_by_requester.remove(&key, RequesterTime::cmp);
                }
            }
        }
    }

    fn resolve_user(&self, ticket: &str, field: &'static str, id: &str) -> Result<Idx, ApplyError> {
        self.users.lookup(id).ok_or_else(|| ApplyError::Dangling {
            ticket: ticket.to_owned(),
            field,
            target: "user",
            value: id.to_owned(),
        })
    }

    /// Inserts or updates a ticket (its CCs and participants are kept).
    pub fn upsert_ticket(&mut self, t: &TicketFields) -> Result<(), ApplyError> {
        let dangling = |field, target, value: &str| ApplyError::Dangling {
            ticket: t.id.clone(),
            field,
            target,
            value: value.to_owned(),
        };
        let requester = self.resolve_user(&t.id, "requester", &t.requester)?;
        let assignee = match &t.assignee {
            Some(a) => self.resolve_user(&t.id, "assignee", a)?,
            None => NONE,
        };
        let organisation = match &t.organisation {
            Some(o) => self
                .orgs
                .lookup(o)
                .ok_or_else(|| dangling("organisation", "organisation", o))?,
            None => NONE,
        };
        let group = match &t.group {
            Some(g) => self
                .groups
                .lookup(g)
                .ok_or_else(|| dangling("group", "group", g))?,
            None => NONE,
        };
        match self.tickets.lookup(&t.id) {
            Some(idx) => {
                self.ticket_postings(idx, false);
                if let Some(row) = self.tickets.row_mut(idx) {
                    row.created_at = t.created_at;
                    row.requester = requester;
                    row.organisation = organisation;
                    row.group = group;
                    row.assignee = assignee;
                    row.status = t.status;
                }
                self.ticket_postings(idx, true);
            }
            None => {
                let idx = self.tickets.push(TicketRow {
                    id: t.id.as_str().into(),
                    created_at: t.created_at,
                    requester,
                    organisation,
                    group,
                    assignee,
                    status: t.status,
                    people: None,
                });
                let tickets = &self.tickets;
                self.all_tickets
                    .insert_unique(idx, |a, b| tickets.id(*a).cmp(tickets.id(*b)));
                self.ticket_postings(idx, true);
            }
        }
        Ok(())
    }

    /// Deletes a ticket; an unknown one is already gone.
    pub fn delete_ticket(&mut self, id: &str) {
        let Some(idx) = self.tickets.lookup(id) else {
            return;
        };
        self.ticket_postings(idx, false);
        let tickets = &self.tickets;
        self.all_tickets
            .remove(&idx, |a, b| tickets.id(*a).cmp(tickets.id(*b)));
        self.tickets.remove(id);
    }

    /// Puts a user on a ticket's CC or participant list, or takes them off.
    /// Taking someone off a ticket that is gone does nothing.
    pub fn set_ticket_person(
        &mut self,
        ticket: &str,
        user: &str,
        role: Role,
        present: bool,
    ) -> Result<(), ApplyError> {
        let Some(idx) = self.tickets.lookup(ticket) else {
            if present {
                return Err(ApplyError::Row {
                    table: "ticket_ccs/ticket_participants".into(),
                    message: format!("unknown ticket `{ticket}`"),
                });
            }
            return Ok(());
        };
        let field = match role {
            Role::Cc => "ccs",
            Role::Participant => "participants",
        };
        let uidx = match self.users.lookup(user) {
            Some(u) => u,
            None if !present => return Ok(()),
            None => {
                return Err(ApplyError::Dangling {
                    ticket: ticket.to_owned(),
                    field,
                    target: "user",
                    value: user.to_owned(),
                });
            }
        };
        self.ticket_postings(idx, false);
        if let Some(row) = self.tickets.row_mut(idx) {
            let people = row
                .people
                .get_or_insert_with(|| Box::new(TicketPeople::default()));
            let list = match role {
                Role::Cc => &mut people.ccs,
                Role::Participant => &mut people.participants,
            };
            match (list.binary_search(&uidx), present) {
                (Err(at), true) => list.insert(at, uidx),
                (Ok(at), false) => {
                    list.remove(at);
                }
                _ => {}
            }
            if people.ccs.is_empty() && people.participants.is_empty() {
                row.people = None;
            }
        }
        self.ticket_postings(idx, true);
        Ok(())
    }
}
