-- Change-log pruning (`ticket-authz prune`): the highest revision whose
-- changes may have been deleted. A reader that applied less than this
-- cannot catch up from the log and reloads in full.
CREATE TABLE ticket_authz_pruned (
    id       integer PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL
);
INSERT INTO ticket_authz_pruned (id, revision) VALUES (1, 0);
