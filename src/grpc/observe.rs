//! How gRPC calls are named and how their statuses end a [`Call`]: the RPC
//! table with one set of metric handles per RPC, and the status-code label
//! (a bounded metric label) and fault rule.

use tonic::{Code, Status};

use crate::app::{Answer, Call, CallMetrics, Operation, Outcome, StatusCode};

/// The fully qualified service name.
pub const SERVICE: &str = "ticketauthz.v1.TicketAuthz";

/// The RPCs, with their wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    CheckAccess,
    CheckAccessBatch,
    ListVisibleTickets,
    ListTicketViewers,
    GetVisibilityFilter,
    ListVisibleResources,
}

impl Rpc {
    pub const ALL: [Rpc; 6] = [
        Rpc::CheckAccess,
        Rpc::CheckAccessBatch,
        Rpc::ListVisibleTickets,
        Rpc::ListTicketViewers,
        Rpc::GetVisibilityFilter,
        Rpc::ListVisibleResources,
    ];

    pub fn method(self) -> &'static str {
        match self {
            Rpc::CheckAccess => "CheckAccess",
            Rpc::CheckAccessBatch => "CheckAccessBatch",
            Rpc::ListVisibleTickets => "ListVisibleTickets",
            Rpc::ListTicketViewers => "ListTicketViewers",
            Rpc::GetVisibilityFilter => "GetVisibilityFilter",
            Rpc::ListVisibleResources => "ListVisibleResources",
        }
    }

    /// `/service/method`, the HTTP/2 path of the RPC.
    pub fn path(self) -> &'static str {
        match self {
            Rpc::CheckAccess => "/ticketauthz.v1.TicketAuthz/CheckAccess",
            Rpc::CheckAccessBatch => "/ticketauthz.v1.TicketAuthz/CheckAccessBatch",
            Rpc::ListVisibleTickets => "/ticketauthz.v1.TicketAuthz/ListVisibleTickets",
            Rpc::ListTicketViewers => "/ticketauthz.v1.TicketAuthz/ListTicketViewers",
            Rpc::GetVisibilityFilter => "/ticketauthz.v1.TicketAuthz/GetVisibilityFilter",
            Rpc::ListVisibleResources => "/ticketauthz.v1.TicketAuthz/ListVisibleResources",
        }
    }

    /// The call's names: the span name is `service/method`, as the RPC
    /// conventions ask.
    pub fn operation(self) -> Operation {
        Operation {
            system: "grpc",
            service: SERVICE,
            method: self.method(),
            span_name: self.path().trim_start_matches('/'),
        }
    }
}

/// Every gRPC status code.
const CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// The gRPC status name in snake case: a bounded metric label.
pub fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// Codes that are the server's fault, not the caller's: only these mark a
/// server span as failed.
fn server_fault(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// Each RPC's metric handles (made at first use, then kept).
#[derive(Debug)]
pub struct Calls([CallMetrics; Rpc::ALL.len()]);

impl Calls {
    pub fn new() -> Self {
        let failures = CODES.map(code_label);
        Self(Rpc::ALL.map(|rpc| CallMetrics::new(rpc.operation(), &failures[1..])))
    }

    /// Opens a call of `rpc` under the caller's trace context.
    pub fn start(&self, rpc: Rpc, metadata: &tonic::metadata::MetadataMap) -> Call<'_> {
        // `Rpc::ALL` lists the variants in declaration order.
        Call::start(&self.0[rpc as usize], metadata.as_ref())
    }
}

impl Default for Calls {
    fn default() -> Self {
        Self::new()
    }
}

/// Closes a call with the status it answered: `answer` for a success.
pub fn finish<T>(call: Call<'_>, result: &Result<T, Status>, answer: Answer) {
    match result {
        Ok(_) => call.finish(Outcome::Answered(answer), StatusCode::Grpc(Code::Ok as i32)),
        Err(status) => call.finish(
            Outcome::Failed {
                label: code_label(status.code()),
                server_fault: server_fault(status.code()),
                description: status.message(),
            },
            StatusCode::Grpc(status.code() as i32),
        ),
    }
}
