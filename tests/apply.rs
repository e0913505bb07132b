//! Incremental changes give the same answers as a fresh build of the
//! changed data, and leave the snapshot they started from untouched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use ticket_authz::core::{self, Action, ActionInput, CheckRequest, Context, TicketFilter};
use ticket_authz::generate::{Spec, generate};
use ticket_authz::model::{Dataset, Status, UserKind};
use ticket_authz::snapshot::{Role, Snapshot, TicketFields};
use ticket_authz::time::Timestamp;

#[derive(Debug, Clone)]
enum Change {
    Upsert {
        ticket: usize,
        requester: usize,
        org: Option<usize>,
        group: Option<usize>,
        assignee: Option<usize>,
        status: usize,
        day: i64,
    },
    Delete {
        ticket: usize,
    },
    Person {
        ticket: usize,
        user: usize,
        cc: bool,
        present: bool,
    },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (
            0usize..320,
            0usize..200,
            proptest::option::of(0usize..12),
            proptest::option::of(0usize..15),
            proptest::option::of(0usize..200),
            0usize..6,
            0i64..500
        )
            .prop_map(|(ticket, requester, org, group, assignee, status, day)| {
                Change::Upsert {
                    ticket,
                    requester,
                    org,
                    group,
                    assignee,
                    status,
                    day,
                }
            }),
        (0usize..320).prop_map(|ticket| Change::Delete { ticket }),
        (0usize..320, 0usize..200, any::<bool>(), any::<bool>()).prop_map(
            |(ticket, user, cc, present)| Change::Person {
                ticket,
                user,
                cc,
                present
            }
        ),
    ]
}

fn ticket_id(i: usize) -> String {
    format!("T{:08}", i)
}

/// Applies a change to the dataset (the reference) and to the snapshot.
fn apply(data: &mut Dataset, snap: &mut Snapshot, c: &Change) {
    match c {
        Change::Upsert {
            ticket,
            requester,
            org,
            group,
            assignee,
            status,
            day,
        } => {
            let fields = TicketFields {
                id: ticket_id(*ticket),
                created_at: Timestamp::from_unix_seconds(1_735_689_600 + day * 86_400),
                requester: data.users[*requester].id.clone(),
                organisation: org.map(|o| data.organisations[o].id.clone()),
                group: group.map(|g| data.groups[g].id.clone()),
                assignee: assignee.map(|a| data.users[a].id.clone()),
                status: Status::ALL[*status],
            };
            snap.upsert_ticket(&fields).unwrap();
            match data.tickets.iter_mut().find(|t| t.id == fields.id) {
                Some(t) => {
                    t.created_at = fields.created_at;
                    t.requester = fields.requester;
                    t.organisation = fields.organisation;
                    t.group = fields.group;
                    t.assignee = fields.assignee;
                    t.status = fields.status;
                }
                None => data.tickets.push(ticket_authz::model::Ticket {
                    id: fields.id,
                    created_at: fields.created_at,
                    requester: fields.requester,
                    organisation: fields.organisation,
                    group: fields.group,
                    assignee: fields.assignee,
                    ccs: Vec::new(),
                    participants: Vec::new(),
                    status: fields.status,
                }),
            }
        }
        Change::Delete { ticket } => {
            snap.delete_ticket(&ticket_id(*ticket));
            data.tickets.retain(|t| t.id != ticket_id(*ticket));
        }
        Change::Person {
            ticket,
            user,
            cc,
            present,
        } => {
            let id = ticket_id(*ticket);
            let user_id = data.users[*user].id.clone();
            let role = if *cc { Role::Cc } else { Role::Participant };
            let result = snap.set_ticket_person(&id, &user_id, role, *present);
            match data.tickets.iter_mut().find(|t| t.id == id) {
                Some(t) => {
                    result.unwrap();
                    let list = if *cc { &mut t.ccs } else { &mut t.participants };
                    list.retain(|u| *u != user_id);
                    if *present {
                        list.push(user_id);
                    }
                }
                None => assert_eq!(result.is_err(), *present),
            }
        }
    }
}

fn answers(snap: &Snapshot, data: &Dataset) -> Vec<String> {
    let now = Context::at(data.now.unwrap());
    let mut out = Vec::new();
    for (i, user) in data.users.iter().enumerate() {
        if i % 5 == 0 {
            let page =
                core::list_visible_tickets(snap, &user.id, &TicketFilter::default(), 1000, "")
                    .unwrap();
            out.push(format!("{} sees {:?}", user.id, page.ids));
        }
        for group in &data.groups {
            let req = CheckRequest {
                user: &user.id,
                action: ActionInput::Known(Action::Create),
                group: &group.id,
                ..CheckRequest::default()
            };
            let d = core::check(snap, &req, now).unwrap();
            out.push(format!(
                "{} create in {}: {} {:?} {:?}",
                user.id, group.id, d.allowed, d.reason, d.warning
            ));
        }
    }
    for i in (0..320).step_by(7) {
        let page = core::list_ticket_viewers(snap, &ticket_id(i), 1000, "").unwrap();
        out.push(format!("{} viewers {:?}", ticket_id(i), page.ids));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn incremental_changes_equal_a_fresh_build(seed in any::<u64>(), changes in proptest::collection::vec(change(), 1..60)) {
        let mut data = generate(&Spec { users: 200, organisations: 12, companies: 8, groups: 15, profiles: 8, tickets: 300, seed });
        prop_assume!(data.users.iter().any(|u| u.kind == UserKind::Agent));
        // Limits near what end-users (few tickets each) and agents (the
        // whole group, ~20) count, so every count shows in the decisions.
        for (i, g) in data.groups.iter_mut().enumerate() {
            let i = i as u32;
            if i.is_multiple_of(2) {
                g.open_ticket_limit = i % 3 + 1;
                g.total_ticket_limit = (i % 4) * 2;
            } else {
                g.open_ticket_limit = 8 + i % 7;
                g.total_ticket_limit = 14 + i % 9;
            }
            g.enforce_open_limit = i % 4 < 2;
        }
        let mut snap = Snapshot::build(&data).unwrap();
        let original = snap.clone();
        let before = answers(&original, &data);
        let original_data = data.clone();
        for c in &changes {
            apply(&mut data, &mut snap, c);
        }
        let fresh = Snapshot::build(&data).unwrap();
        prop_assert_eq!(answers(&snap, &data), answers(&fresh, &data));
        prop_assert_eq!(answers(&original, &original_data), before);
    }
}
