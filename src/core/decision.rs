//! Decisions: allow or deny, the rule that decided, a warning, and the
//! explanation steps.

/// Reason codes (access model §3 and §8), in wire order without the `REASON_` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Superadmin,
    Requester,
    Assignee,
    Cc,
    Participant,
    GroupFlag,
    Organisation,
    Member,
    SelfService,
    AccessManager,
    Company,
    NoMatchingRule,
    UnknownUser,
    UnknownResource,
    Suspended,
    NotAMember,
    OrganisationRequired,
    OpenTicketLimit,
    TotalTicketLimit,
    // Access model §8 (wire numbers 20 … 24).
    Owner,
    Role,
    Public,
    Associated,
    GroupMember,
}

impl Reason {
    pub const ALL: [Reason; 24] = [
        Reason::Superadmin,
        Reason::Requester,
        Reason::Assignee,
        Reason::Cc,
        Reason::Participant,
        Reason::GroupFlag,
        Reason::Organisation,
        Reason::Member,
        Reason::SelfService,
        Reason::AccessManager,
        Reason::Company,
        Reason::NoMatchingRule,
        Reason::UnknownUser,
        Reason::UnknownResource,
        Reason::Suspended,
        Reason::NotAMember,
        Reason::OrganisationRequired,
        Reason::OpenTicketLimit,
        Reason::TotalTicketLimit,
        Reason::Owner,
        Reason::Role,
        Reason::Public,
        Reason::Associated,
        Reason::GroupMember,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Reason::Superadmin => "SUPERADMIN",
            Reason::Requester => "REQUESTER",
            Reason::Assignee => "ASSIGNEE",
            Reason::Cc => "CC",
            Reason::Participant => "PARTICIPANT",
            Reason::GroupFlag => "GROUP_FLAG",
            Reason::Organisation => "ORGANISATION",
            Reason::Member => "MEMBER",
            Reason::SelfService => "SELF_SERVICE",
            Reason::AccessManager => "ACCESS_MANAGER",
            Reason::Company => "COMPANY",
            Reason::NoMatchingRule => "NO_MATCHING_RULE",
            Reason::UnknownUser => "UNKNOWN_USER",
            Reason::UnknownResource => "UNKNOWN_RESOURCE",
            Reason::Suspended => "SUSPENDED",
            Reason::NotAMember => "NOT_A_MEMBER",
            Reason::OrganisationRequired => "ORGANISATION_REQUIRED",
            Reason::OpenTicketLimit => "OPEN_TICKET_LIMIT",
            Reason::TotalTicketLimit => "TOTAL_TICKET_LIMIT",
            Reason::Owner => "OWNER",
            Reason::Role => "ROLE",
            Reason::Public => "PUBLIC",
            Reason::Associated => "ASSOCIATED",
            Reason::GroupMember => "GROUP_MEMBER",
        }
    }

    pub fn parse(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The answer to a well-formed access question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    pub warning: Option<Reason>,
    /// Steps a helpdesk administrator can read; empty unless asked for.
    pub explanation: Vec<String>,
}

/// Collects explanation steps only when they were asked for, so that the
/// common path formats nothing.
#[derive(Debug, Default)]
pub(crate) struct Explain {
    steps: Option<Vec<String>>,
}

impl Explain {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            steps: enabled.then(Vec::new),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.steps.is_some()
    }

    pub(crate) fn step(&mut self, text: impl FnOnce() -> String) {
        if let Some(steps) = &mut self.steps {
            steps.push(text());
        }
    }

    pub(crate) fn finish(
        mut self,
        allowed: bool,
        reason: Reason,
        warning: Option<Reason>,
    ) -> Decision {
        self.step(|| {
            let verdict = if allowed { "allowed" } else { "denied" };
            match warning {
                Some(w) => format!("{verdict} by {reason}, with warning {w}"),
                None => format!("{verdict}: {reason}"),
            }
        });
        Decision {
            allowed,
            reason,
            warning,
            explanation: self.steps.unwrap_or_default(),
        }
    }
}
