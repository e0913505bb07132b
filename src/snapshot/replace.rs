//! Whole-set changes: every row one key holds, replaced at once, which is
//! what a mapped source's re-read gives (it knows the rows now, not which
//! went). Applied as the differences, through the one-row changes, so the
//! indexes are kept by the code that keeps them for every source.

use super::change::Role;
use super::{ALL, ApplyError, Snapshot};
use crate::flags::{Flag, FlagSet};

impl Snapshot {
    /// Makes `users` the ticket's CCs or participants. An unknown ticket
    /// is gone, and its people with it.
    pub fn replace_ticket_people(
        &mut self,
        ticket: &str,
        role: Role,
        users: &[String],
    ) -> Result<(), ApplyError> {
        let Some(idx) = self.tickets.lookup(ticket) else {
            return Ok(());
        };
        let row = &self.tickets[idx];
        let held = match role {
            Role::Cc => row.ccs(),
            Role::Participant => row.participants(),
        };
        let held: Vec<String> = held.iter().map(|u| self.users.id(*u).to_owned()).collect();
        for gone in held.iter().filter(|u| !users.contains(u)) {
            self.set_ticket_person(ticket, gone, role, false)?;
        }
        for new in users.iter().filter(|u| !held.contains(u)) {
            self.set_ticket_person(ticket, new, role, true)?;
        }
        Ok(())
    }

    /// Makes `grants` (profile, group or every group) the user's grants.
    /// An unknown user has none.
    pub fn replace_grants(
        &mut self,
        user: &str,
        grants: &[(String, Option<String>)],
    ) -> Result<(), ApplyError> {
        let Some(uidx) = self.users.lookup(user) else {
            return Ok(());
        };
        let held: Vec<(String, Option<String>)> = self.users[uidx]
            .grants
            .iter()
            .map(|g| {
                let group = (g.group != ALL).then(|| self.groups.id(g.group).to_owned());
                (self.profiles.id(g.profile).to_owned(), group)
            })
            .collect();
        for (profile, group) in held.iter().filter(|g| !grants.contains(g)) {
            self.set_grant(user, profile, group.as_deref(), false)?;
        }
        for (profile, group) in grants.iter().filter(|g| !held.contains(g)) {
            self.set_grant(user, profile, group.as_deref(), true)?;
        }
        Ok(())
    }

    /// Makes `flags` the profile's flags. An unknown profile has none.
    pub fn replace_profile_flags(
        &mut self,
        profile: &str,
        flags: &[Flag],
    ) -> Result<(), ApplyError> {
        let Some(pidx) = self.profiles.lookup(profile) else {
            return Ok(());
        };
        let held = self.profiles[pidx].flags;
        let wanted: FlagSet = flags.iter().copied().collect();
        for flag in held.iter().filter(|f| !wanted.contains(*f)) {
            self.set_profile_flag(profile, flag, false)?;
        }
        for flag in wanted.iter().filter(|f| !held.contains(*f)) {
            self.set_profile_flag(profile, flag, true)?;
        }
        Ok(())
    }
}
