//! The check every mapped-source follow test ends its steps with: the
//! served snapshot, once at the source's revision, answers every question
//! as a snapshot built from a full read of the mapping at that revision.

use std::time::{Duration, Instant};

use ticket_authz::core::{
    self, Action, ActionInput, CheckRequest, Context, TicketFilter, ticket_viewers_after,
    visible_tickets_after,
};
use ticket_authz::mapped::MappedDb;
use ticket_authz::mapping::Mapping;
use ticket_authz::model::Dataset;
use ticket_authz::snapshot::Snapshot;
use ticket_authz::store::Store;

/// Waits until the served revision reaches the source's, then checks the
/// served answers against a full read; `step` names the failure.
pub async fn matches_a_full_read(db: &MappedDb, mapping: &Mapping, store: &Store, step: &str) {
    let revision = db.revision().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let served = loop {
        let served = store.current().unwrap();
        if served.revision() >= revision {
            break served;
        }
        assert!(
            Instant::now() < deadline,
            "{step}: still at revision {} of {revision} (held back: {:?})",
            served.revision(),
            store.held_back()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(store.held_back().is_none(), "{step}: held back");
    let read = db.read(mapping).await.unwrap();
    assert_eq!(
        read.revision,
        served.revision(),
        "{step}: writes after the step"
    );
    let mut fresh = Snapshot::build(&read.dataset).unwrap();
    fresh.set_revision(read.revision);
    assert_eq!(served.stats(), fresh.stats(), "{step}: entity counts");
    let (a, b) = (
        answers(&served, &read.dataset),
        answers(&fresh, &read.dataset),
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "{step}: served (left) against a full read (right)");
    }
    assert_eq!(a.len(), b.len());
}

/// Every decision a helpdesk's screens ask for, on every user and ticket
/// the full read holds: view, comment, edit; each user's visible tickets;
/// each ticket's viewers; the IR/IW/IM flags on every group.
pub fn answers(snap: &Snapshot, data: &Dataset) -> Vec<String> {
    let now = Context::at(super::now(snap));
    let mut out = Vec::new();
    for user in &data.users {
        for ticket in &data.tickets {
            for action in [Action::View, Action::Comment, Action::Edit] {
                let req = CheckRequest {
                    user: &user.id,
                    action: ActionInput::Known(action),
                    ticket: &ticket.id,
                    ..CheckRequest::default()
                };
                let d = core::check(snap, &req, now).unwrap();
                out.push(format!(
                    "{} {} {}: {} {:?}",
                    user.id,
                    action.name(),
                    ticket.id,
                    d.allowed,
                    d.reason
                ));
            }
        }
        for group in &data.groups {
            for flag in ["IR", "IW", "IM"] {
                let req = CheckRequest {
                    user: &user.id,
                    action: ActionInput::Known(Action::HasFlag),
                    group: &group.id,
                    flag,
                    ..CheckRequest::default()
                };
                let d = core::check(snap, &req, now).unwrap();
                out.push(format!(
                    "{} {flag} on {}: {} {:?}",
                    user.id, group.id, d.allowed, d.reason
                ));
            }
        }
        let (visible, _) =
            visible_tickets_after(snap, &user.id, &TicketFilter::default(), None, 100_000);
        out.push(format!("{} sees {visible:?}", user.id));
    }
    for ticket in &data.tickets {
        let (viewers, _) = ticket_viewers_after(snap, &ticket.id, None, 100_000);
        out.push(format!("{} viewers {viewers:?}", ticket.id));
    }
    out
}
