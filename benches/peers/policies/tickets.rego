# The ticket `view` and `comment` rules of the access model (§3), in Rego.
# Data is built by `src/rego.rs` (what is precomputed there is listed in
# BENCHMARKS.md); the input is {"user": id, "ticket": id}. The package is
# not `tickets` because `data.tickets` holds the tickets.
package helpdesk

import rego.v1

default view := false

default comment := false

user := data.users[input.user]

ticket := data.tickets[input.ticket]

# Before any rule: a suspended user (a superadmin too) is denied everything.
# Written as a comparison so that an unknown user is not "active".
active if user.suspended == false

view if {
	active
	user.kind == "superadmin"
}

view if {
	active
	involved
}

# Editors and work-unit authors view, but commenting needs another rule.
view if {
	active
	input.user in ticket.participants
}

view if {
	active
	grp_ir
}

view if {
	active
	org_view
}

comment if {
	active
	user.kind == "superadmin"
}

comment if {
	active
	involved
}

comment if {
	active
	grp_iw
}

comment if {
	active
	org_comment
}

# REQUESTER, ASSIGNEE and CC, which both actions share.
involved if ticket.requester == input.user

involved if ticket.assignee == input.user

involved if input.user in ticket.ccs

# data.groups[g] lists the grant scopes that reach group g: g itself, its
# propagating ancestors and "*"; a ticket without a group has group "*".
grp_ir if {
	user.kind == "agent"
	some scope in data.groups[ticket.group]
	user.ir[scope]
	company_ok
}

grp_iw if {
	user.kind == "agent"
	some scope in data.groups[ticket.group]
	user.iw[scope]
	company_ok
}

# Grouped only by company: the requester must be in the agent's company.
company_ok if user.company_scoped == false

company_ok if {
	user.company_scoped
	user.company != null
	data.users[ticket.requester].company == user.company
}

member if user.orgs[ticket.organisation]

# The more permissive of the user-level and organisation-level settings.
org_view if {
	member
	user.org_access
}

org_view if {
	member
	data.orgs[ticket.organisation] != "own"
}

org_comment if {
	member
	data.orgs[ticket.organisation] == "comment_all"
}
