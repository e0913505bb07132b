-- Indexes for the ticket-cache mode, where lists and ticket limits are
-- answered in SQL (src/db/lists.rs). SQLite's default collation, BINARY,
-- is byte order, the order lists page in. The ticket indexes end in the
-- columns the list filters test (organisation, group, status), so that a
-- filtered walk reads only the index. Partial indexes leave out the NULLs
-- no list asks for.

-- Every ticket in id order with what the probe of the next tickets for
-- organisation and group access reads.
CREATE INDEX IF NOT EXISTS tickets_id_cover ON tickets (id, organisation_id, group_id, status);
-- The user clause: tickets requested, assigned, CC'd or taken part in.
CREATE INDEX IF NOT EXISTS tickets_requester ON tickets (requester_id, id, organisation_id, group_id, status);
CREATE INDEX IF NOT EXISTS tickets_assignee ON tickets (assignee_id, id, organisation_id, group_id, status) WHERE assignee_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ticket_ccs_user ON ticket_ccs (user_id, ticket_id);
CREATE INDEX IF NOT EXISTS ticket_participants_user ON ticket_participants (user_id, ticket_id);
-- Organisation views and the organisation filter.
CREATE INDEX IF NOT EXISTS tickets_organisation ON tickets (organisation_id, id, group_id, status) WHERE organisation_id IS NOT NULL;
-- Group access and the group filter.
CREATE INDEX IF NOT EXISTS tickets_group ON tickets (group_id, id, organisation_id, status) WHERE group_id IS NOT NULL;
-- Company-scoped agents: the requesters of a company.
CREATE INDEX IF NOT EXISTS users_company ON users (company_id) WHERE company_id IS NOT NULL;
-- Ticket limits: a group's tickets by creation second (timestamps are
-- text with any offset; unixepoch() makes them comparable), of everyone
-- or of one requester, with the status for the open count.
CREATE INDEX IF NOT EXISTS tickets_group_time ON tickets (group_id, unixepoch(created_at), status) WHERE group_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_group_requester_time ON tickets (group_id, requester_id, unixepoch(created_at), status) WHERE group_id IS NOT NULL;
