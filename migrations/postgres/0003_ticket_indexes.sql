-- Indexes for the ticket-cache mode, where lists and ticket limits are
-- answered in SQL (src/db/lists.rs). Ticket ids are paged in byte order,
-- so every id column is indexed `COLLATE "C"`: the database's default
-- collation may order ids differently, and an index in that order cannot
-- serve `ORDER BY id COLLATE "C"`. The ticket indexes include the columns
-- the list filters test (organisation, group, status), so that a filtered
-- walk reads only the index. Partial indexes leave out the NULLs no list
-- asks for. Plain CREATE INDEX (the migration runs in a transaction), IF
-- NOT EXISTS so that operators of a large database can build the same
-- indexes first with CREATE INDEX CONCURRENTLY under these names.

-- Every ticket in byte order (a user who sees everything), with what the
-- probe of the next tickets for organisation and group access reads.
CREATE INDEX IF NOT EXISTS tickets_id_bytes ON tickets (id COLLATE "C") INCLUDE (organisation_id, group_id, status);
-- The user clause: tickets requested, assigned, CC'd or taken part in.
CREATE INDEX IF NOT EXISTS tickets_requester ON tickets (requester_id, id COLLATE "C") INCLUDE (organisation_id, group_id, status);
CREATE INDEX IF NOT EXISTS tickets_assignee ON tickets (assignee_id, id COLLATE "C") INCLUDE (organisation_id, group_id, status) WHERE assignee_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ticket_ccs_user ON ticket_ccs (user_id, ticket_id COLLATE "C");
CREATE INDEX IF NOT EXISTS ticket_participants_user ON ticket_participants (user_id, ticket_id COLLATE "C");
-- Organisation views and the organisation filter.
CREATE INDEX IF NOT EXISTS tickets_organisation ON tickets (organisation_id, id COLLATE "C") INCLUDE (group_id, status) WHERE organisation_id IS NOT NULL;
-- Group access and the group filter.
CREATE INDEX IF NOT EXISTS tickets_group ON tickets (group_id, id COLLATE "C") INCLUDE (organisation_id, status) WHERE group_id IS NOT NULL;
-- Company-scoped agents: the requesters of a company.
CREATE INDEX IF NOT EXISTS users_company ON users (company_id) WHERE company_id IS NOT NULL;
-- Ticket limits: a group's tickets in a creation-time window, of everyone
-- or of one requester; the status makes the open count index-only.
CREATE INDEX IF NOT EXISTS tickets_group_time ON tickets (group_id, created_at, status) WHERE group_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_group_requester_time ON tickets (group_id, requester_id, created_at, status) WHERE group_id IS NOT NULL;
