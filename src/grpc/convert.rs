//! Conversions between wire messages and domain types, and application
//! errors to gRPC statuses.

use tonic::Status;

use super::pb;
use crate::app::{AppError, BatchCheck, CheckOptions, optional_id, required_id};
use crate::core::{
    Action, ActionInput, CheckRequest, Decision, InlineTicket, Reason, TicketFilter,
    VisibilityFilter,
};
use crate::model::Status as TicketStatus;

/// The wire `Action` number of a domain action: the wire enum lists the
/// actions in `Action::ALL` order after `ACTION_UNSPECIFIED`.
pub fn action_code(action: Action) -> i32 {
    Action::ALL
        .iter()
        .position(|a| *a == action)
        .and_then(|i| i32::try_from(i + 1).ok())
        .unwrap_or(0)
}

/// The domain action of a wire number.
pub fn action_input(code: i32) -> ActionInput<'static> {
    if code == 0 {
        return ActionInput::Missing;
    }
    usize::try_from(code - 1)
        .ok()
        .and_then(|i| Action::ALL.get(i))
        .map_or(ActionInput::UnknownCode(code), |a| ActionInput::Known(*a))
}

/// The wire `Reason` of a domain reason (same order, after `REASON_UNSPECIFIED`).
pub fn reason_code(reason: Reason) -> i32 {
    Reason::ALL
        .iter()
        .position(|r| *r == reason)
        .and_then(|i| i32::try_from(i + 1).ok())
        .unwrap_or(0)
}

/// The domain reason of a wire number, if any.
pub fn reason_of(code: i32) -> Option<Reason> {
    usize::try_from(code.checked_sub(1)?)
        .ok()
        .and_then(|i| Reason::ALL.get(i).copied())
}

impl<'a> From<&'a pb::CheckAccessRequest> for CheckRequest<'a> {
    fn from(m: &'a pb::CheckAccessRequest) -> Self {
        CheckRequest {
            user: &m.user_id,
            action: action_input(m.action),
            ticket: &m.ticket_id,
            organisation: &m.organisation_id,
            group: &m.group_id,
            company: &m.company_id,
            flag: &m.flag,
            resource: &m.resource_id,
            inline: m.ticket.as_ref().map(|t| InlineTicket {
                requester: &t.requester_id,
                organisation: &t.organisation_id,
                group: &t.group_id,
                assignee: &t.assignee_id,
                ccs: &t.cc_ids,
                participants: &t.participant_ids,
                status: &t.status,
                created_at: &t.created_at,
            }),
        }
    }
}

pub fn decision_to_pb(d: Decision, revision: u64) -> pb::CheckAccessResponse {
    pb::CheckAccessResponse {
        allowed: d.allowed,
        reason: reason_code(d.reason),
        warning: d.warning.map_or(0, reason_code),
        revision,
        explanation: d.explanation,
    }
}

pub fn filter_to_pb(f: VisibilityFilter) -> pb::VisibilityFilter {
    pb::VisibilityFilter {
        everything: f.everything,
        user_id: f.user_id.unwrap_or_default(),
        organisation_ids: f.organisation_ids,
        group_clauses: f
            .group_clauses
            .into_iter()
            .map(|c| pb::GroupClause {
                group_ids: c.group_ids,
                any_group: c.any_group,
                requester_company_id: c.requester_company_id.unwrap_or_default(),
            })
            .collect(),
    }
}

impl TryFrom<&pb::ListVisibleTicketsRequest> for TicketFilter {
    type Error = AppError;

    /// Checks the ids in the contract's order (user, organisation, group)
    /// before the statuses.
    fn try_from(m: &pb::ListVisibleTicketsRequest) -> Result<Self, AppError> {
        required_id("user_id", &m.user_id)?;
        optional_id("organisation_id", &m.organisation_id)?;
        optional_id("group_id", &m.group_id)?;
        let statuses = m
            .statuses
            .iter()
            .map(|s| TicketStatus::parse(s).ok_or_else(|| AppError::UnknownStatus(s.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let given = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok(TicketFilter {
            organisation: given(&m.organisation_id),
            group: given(&m.group_id),
            statuses,
        })
    }
}

impl BatchCheck for pb::CheckAccessRequest {
    fn request(&self) -> CheckRequest<'_> {
        CheckRequest::from(self)
    }

    fn options(&self) -> CheckOptions {
        check_options(self)
    }
}

pub fn check_options(m: &pb::CheckAccessRequest) -> CheckOptions {
    CheckOptions {
        min_revision: m.min_revision,
        explain: m.explain,
    }
}

/// The status of a refusal: the caller's mistakes are INVALID_ARGUMENT,
/// data not (yet) there is UNAVAILABLE; the message is the error's.
/// `ResourceKind` by wire number; unspecified or unknown is an error
/// naming `kind`.
pub fn resource_kind(code: i32) -> Result<crate::model::ResourceKind, AppError> {
    match code {
        0 => Err(AppError::Kind("must be specified".to_owned())),
        n => usize::try_from(n - 1)
            .ok()
            .and_then(|i| crate::model::ResourceKind::ALL.get(i).copied())
            .ok_or_else(|| AppError::Kind(format!("unknown kind {n}"))),
    }
}

/// The wire number of a `ResourceKind`.
pub fn resource_kind_code(kind: crate::model::ResourceKind) -> i32 {
    crate::model::ResourceKind::ALL
        .iter()
        .position(|k| *k == kind)
        .and_then(|i| i32::try_from(i + 1).ok())
        .unwrap_or(0)
}

pub fn app_status(e: AppError) -> Status {
    if e.is_invalid() {
        Status::invalid_argument(e.to_string())
    } else {
        Status::unavailable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_enums_match_domain_names() {
        for action in Action::ALL {
            let wire = pb::Action::try_from(action_code(action)).map(|a| a.as_str_name());
            assert_eq!(
                wire,
                Ok(format!("ACTION_{}", action.name().to_uppercase()).as_str())
            );
            assert_eq!(
                action_input(action_code(action)),
                ActionInput::Known(action)
            );
        }
        for reason in Reason::ALL {
            let wire = pb::Reason::try_from(reason_code(reason)).map(|r| r.as_str_name());
            assert_eq!(wire, Ok(format!("REASON_{}", reason.name()).as_str()));
            assert_eq!(reason_of(reason_code(reason)), Some(reason));
        }
        assert_eq!(action_input(0), ActionInput::Missing);
        assert_eq!(action_input(39), ActionInput::UnknownCode(39));
        assert_eq!(reason_of(25), None);
        assert_eq!(action_input(-1), ActionInput::UnknownCode(-1));
        assert_eq!(reason_of(0), None);
        for kind in crate::model::ResourceKind::ALL.iter().copied() {
            let code = resource_kind_code(kind);
            let wire = pb::ResourceKind::try_from(code).map(|k| k.as_str_name());
            assert_eq!(
                wire,
                Ok(format!("RESOURCE_KIND_{}", kind.name().to_uppercase()).as_str())
            );
            assert_eq!(resource_kind(code), Ok(kind));
        }
        assert_eq!(
            resource_kind(0),
            Err(AppError::Kind("must be specified".to_owned()))
        );
        assert_eq!(
            resource_kind(9),
            Err(AppError::Kind("unknown kind 9".to_owned()))
        );
    }
}
