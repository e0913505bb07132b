-- ticket-authz schema for SQLite (the embedded default): the entities of
-- the access model and change capture. SQLite runs one writer at a time, so
-- the order of change rows is commit order and each row's `revision` is one.
-- Timestamps are RFC 3339 text; booleans are 0 or 1.

CREATE TABLE organisations (
    id            TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    name          TEXT NOT NULL,
    ticket_access TEXT NOT NULL DEFAULT 'own' CHECK (ticket_access IN ('own', 'view_all', 'comment_all'))
);

CREATE TABLE organisation_domains (
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    domain          TEXT NOT NULL CHECK (domain <> '' AND domain = lower(domain)),
    added_at        TEXT NOT NULL,
    PRIMARY KEY (organisation_id, domain)
);
CREATE INDEX organisation_domains_domain ON organisation_domains (domain);

CREATE TABLE partnerships (
    partner_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    since      TEXT NOT NULL,
    PRIMARY KEY (partner_id, client_id),
    CHECK (partner_id <> client_id)
);

CREATE TABLE groups (
    id                 TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND id <> '*' AND length(CAST(id AS BLOB)) <= 128),
    name               TEXT NOT NULL,
    parent_id          TEXT REFERENCES groups (id) ON DELETE RESTRICT,
    propagate INTEGER NOT NULL DEFAULT 0 CHECK (propagate IN (0, 1)),
    open_ticket_limit  INTEGER NOT NULL DEFAULT 0 CHECK (open_ticket_limit >= 0),
    enforce_open_limit INTEGER NOT NULL DEFAULT 0 CHECK (enforce_open_limit IN (0, 1)),
    total_ticket_limit INTEGER NOT NULL DEFAULT 0 CHECK (total_ticket_limit >= 0),
    CHECK (parent_id IS NULL OR parent_id <> id)
);

CREATE TABLE profiles (
    id   TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    name TEXT NOT NULL
);

CREATE TABLE profile_flags (
    profile_id TEXT NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    flag       TEXT NOT NULL CHECK (flag IN ('IR', 'IW', 'IM', 'IC', 'SI', 'QA', 'KR', 'KW', 'KM', 'FRR', 'FRW', 'FRM', 'VR', 'VW', 'VM', 'RR', 'RM', 'WR', 'WW', 'WM', 'PR', 'PM', 'CR', 'CW', 'CM', 'CIR', 'CIW', 'CIM', 'CLR', 'CLW', 'CLM', 'AR', 'AW', 'AM', 'UM', 'DM', 'FM', 'HR')),
    PRIMARY KEY (profile_id, flag)
);

CREATE TABLE users (
    id                      TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    email                   TEXT CHECK (email IS NULL OR email LIKE '_%@_%'),
    name                    TEXT,
    created_at              TEXT NOT NULL,
    kind                    TEXT NOT NULL DEFAULT 'end_user' CHECK (kind IN ('end_user', 'agent', 'superadmin')),
    suspended INTEGER NOT NULL DEFAULT 0 CHECK (suspended IN (0, 1)),
    ticket_access           TEXT NOT NULL DEFAULT 'own' CHECK (ticket_access IN ('own', 'organisation')),
    default_organisation_id TEXT REFERENCES organisations (id) ON DELETE SET NULL,
    company_id              TEXT REFERENCES companies (id) ON DELETE SET NULL,
    company_scoped INTEGER NOT NULL DEFAULT 0 CHECK (company_scoped IN (0, 1))
);

CREATE TABLE companies (
    id        TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    name      TEXT NOT NULL,
    parent_id TEXT REFERENCES companies (id) ON DELETE RESTRICT,
    owner_id  TEXT REFERENCES users (id) ON DELETE SET NULL,
    CHECK (parent_id IS NULL OR parent_id <> id)
);

CREATE TABLE user_organisations (
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, organisation_id)
);

CREATE TABLE organisation_access_managers (
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (organisation_id, user_id)
);

-- group_id NULL means every group (the access model's "*").
CREATE TABLE grants (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    profile_id TEXT NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    group_id   TEXT REFERENCES groups (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX grants_key ON grants (user_id, profile_id, coalesce(group_id, '*'));

CREATE TABLE tickets (
    id              TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    created_at      TEXT NOT NULL,
    requester_id    TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    organisation_id TEXT REFERENCES organisations (id) ON DELETE SET NULL,
    group_id        TEXT REFERENCES groups (id) ON DELETE SET NULL,
    assignee_id     TEXT REFERENCES users (id) ON DELETE SET NULL,
    status          TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'open', 'pending', 'on_hold', 'solved', 'closed'))
);

CREATE TABLE ticket_ccs (
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (ticket_id, user_id)
);

CREATE TABLE ticket_participants (
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (ticket_id, user_id)
);

-- Change capture ---------------------------------------------------------

-- Every change with its row images; `revision` only grows (AUTOINCREMENT
-- never reuses a number). A `bulk` row (from `ticket-authz import`) asks
-- readers to reload in full.
CREATE TABLE ticket_authz_changes (
    revision   INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name TEXT NOT NULL,
    op         TEXT NOT NULL CHECK (op IN ('I', 'U', 'D', 'B')),
    old_row    TEXT,
    new_row    TEXT,
    changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- While `bulk` is 1 (inside an import), row changes are not logged one by one.
CREATE TABLE ticket_authz_state (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    bulk INTEGER NOT NULL DEFAULT 0
);
INSERT INTO ticket_authz_state (id, bulk) VALUES (1, 0);

-- The latest revision: `SELECT revision FROM ticket_authz_revision`.
CREATE VIEW ticket_authz_revision AS
    SELECT coalesce(max(revision), 0) AS revision FROM ticket_authz_changes;

CREATE TRIGGER organisations_capture_insert AFTER INSERT ON organisations WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('organisations', 'I', json_object('id', NEW.id, 'name', NEW.name, 'ticket_access', NEW.ticket_access));
END;
CREATE TRIGGER organisations_capture_update AFTER UPDATE ON organisations WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('organisations', 'U', json_object('id', OLD.id, 'name', OLD.name, 'ticket_access', OLD.ticket_access), json_object('id', NEW.id, 'name', NEW.name, 'ticket_access', NEW.ticket_access));
END;
CREATE TRIGGER organisations_capture_delete AFTER DELETE ON organisations WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('organisations', 'D', json_object('id', OLD.id, 'name', OLD.name, 'ticket_access', OLD.ticket_access));
END;

CREATE TRIGGER organisation_domains_capture_insert AFTER INSERT ON organisation_domains WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('organisation_domains', 'I', json_object('organisation_id', NEW.organisation_id, 'domain', NEW.domain, 'added_at', NEW.added_at));
END;
CREATE TRIGGER organisation_domains_capture_update AFTER UPDATE ON organisation_domains WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('organisation_domains', 'U', json_object('organisation_id', OLD.organisation_id, 'domain', OLD.domain, 'added_at', OLD.added_at), json_object('organisation_id', NEW.organisation_id, 'domain', NEW.domain, 'added_at', NEW.added_at));
END;
CREATE TRIGGER organisation_domains_capture_delete AFTER DELETE ON organisation_domains WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('organisation_domains', 'D', json_object('organisation_id', OLD.organisation_id, 'domain', OLD.domain, 'added_at', OLD.added_at));
END;

CREATE TRIGGER partnerships_capture_insert AFTER INSERT ON partnerships WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('partnerships', 'I', json_object('partner_id', NEW.partner_id, 'client_id', NEW.client_id, 'since', NEW.since));
END;
CREATE TRIGGER partnerships_capture_update AFTER UPDATE ON partnerships WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('partnerships', 'U', json_object('partner_id', OLD.partner_id, 'client_id', OLD.client_id, 'since', OLD.since), json_object('partner_id', NEW.partner_id, 'client_id', NEW.client_id, 'since', NEW.since));
END;
CREATE TRIGGER partnerships_capture_delete AFTER DELETE ON partnerships WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('partnerships', 'D', json_object('partner_id', OLD.partner_id, 'client_id', OLD.client_id, 'since', OLD.since));
END;

CREATE TRIGGER groups_capture_insert AFTER INSERT ON groups WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('groups', 'I', json_object('id', NEW.id, 'name', NEW.name, 'parent_id', NEW.parent_id, 'propagate', NEW.propagate, 'open_ticket_limit', NEW.open_ticket_limit, 'enforce_open_limit', NEW.enforce_open_limit, 'total_ticket_limit', NEW.total_ticket_limit));
END;
CREATE TRIGGER groups_capture_update AFTER UPDATE ON groups WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('groups', 'U', json_object('id', OLD.id, 'name', OLD.name, 'parent_id', OLD.parent_id, 'propagate', OLD.propagate, 'open_ticket_limit', OLD.open_ticket_limit, 'enforce_open_limit', OLD.enforce_open_limit, 'total_ticket_limit', OLD.total_ticket_limit), json_object('id', NEW.id, 'name', NEW.name, 'parent_id', NEW.parent_id, 'propagate', NEW.propagate, 'open_ticket_limit', NEW.open_ticket_limit, 'enforce_open_limit', NEW.enforce_open_limit, 'total_ticket_limit', NEW.total_ticket_limit));
END;
CREATE TRIGGER groups_capture_delete AFTER DELETE ON groups WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('groups', 'D', json_object('id', OLD.id, 'name', OLD.name, 'parent_id', OLD.parent_id, 'propagate', OLD.propagate, 'open_ticket_limit', OLD.open_ticket_limit, 'enforce_open_limit', OLD.enforce_open_limit, 'total_ticket_limit', OLD.total_ticket_limit));
END;

CREATE TRIGGER profiles_capture_insert AFTER INSERT ON profiles WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('profiles', 'I', json_object('id', NEW.id, 'name', NEW.name));
END;
CREATE TRIGGER profiles_capture_update AFTER UPDATE ON profiles WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('profiles', 'U', json_object('id', OLD.id, 'name', OLD.name), json_object('id', NEW.id, 'name', NEW.name));
END;
CREATE TRIGGER profiles_capture_delete AFTER DELETE ON profiles WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('profiles', 'D', json_object('id', OLD.id, 'name', OLD.name));
END;

CREATE TRIGGER profile_flags_capture_insert AFTER INSERT ON profile_flags WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('profile_flags', 'I', json_object('profile_id', NEW.profile_id, 'flag', NEW.flag));
END;
CREATE TRIGGER profile_flags_capture_update AFTER UPDATE ON profile_flags WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('profile_flags', 'U', json_object('profile_id', OLD.profile_id, 'flag', OLD.flag), json_object('profile_id', NEW.profile_id, 'flag', NEW.flag));
END;
CREATE TRIGGER profile_flags_capture_delete AFTER DELETE ON profile_flags WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('profile_flags', 'D', json_object('profile_id', OLD.profile_id, 'flag', OLD.flag));
END;

CREATE TRIGGER companies_capture_insert AFTER INSERT ON companies WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('companies', 'I', json_object('id', NEW.id, 'name', NEW.name, 'parent_id', NEW.parent_id, 'owner_id', NEW.owner_id));
END;
CREATE TRIGGER companies_capture_update AFTER UPDATE ON companies WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('companies', 'U', json_object('id', OLD.id, 'name', OLD.name, 'parent_id', OLD.parent_id, 'owner_id', OLD.owner_id), json_object('id', NEW.id, 'name', NEW.name, 'parent_id', NEW.parent_id, 'owner_id', NEW.owner_id));
END;
CREATE TRIGGER companies_capture_delete AFTER DELETE ON companies WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('companies', 'D', json_object('id', OLD.id, 'name', OLD.name, 'parent_id', OLD.parent_id, 'owner_id', OLD.owner_id));
END;

CREATE TRIGGER users_capture_insert AFTER INSERT ON users WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('users', 'I', json_object('id', NEW.id, 'email', NEW.email, 'name', NEW.name, 'created_at', NEW.created_at, 'kind', NEW.kind, 'suspended', NEW.suspended, 'ticket_access', NEW.ticket_access, 'default_organisation_id', NEW.default_organisation_id, 'company_id', NEW.company_id, 'company_scoped', NEW.company_scoped));
END;
CREATE TRIGGER users_capture_update AFTER UPDATE ON users WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('users', 'U', json_object('id', OLD.id, 'email', OLD.email, 'name', OLD.name, 'created_at', OLD.created_at, 'kind', OLD.kind, 'suspended', OLD.suspended, 'ticket_access', OLD.ticket_access, 'default_organisation_id', OLD.default_organisation_id, 'company_id', OLD.company_id, 'company_scoped', OLD.company_scoped), json_object('id', NEW.id, 'email', NEW.email, 'name', NEW.name, 'created_at', NEW.created_at, 'kind', NEW.kind, 'suspended', NEW.suspended, 'ticket_access', NEW.ticket_access, 'default_organisation_id', NEW.default_organisation_id, 'company_id', NEW.company_id, 'company_scoped', NEW.company_scoped));
END;
CREATE TRIGGER users_capture_delete AFTER DELETE ON users WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('users', 'D', json_object('id', OLD.id, 'email', OLD.email, 'name', OLD.name, 'created_at', OLD.created_at, 'kind', OLD.kind, 'suspended', OLD.suspended, 'ticket_access', OLD.ticket_access, 'default_organisation_id', OLD.default_organisation_id, 'company_id', OLD.company_id, 'company_scoped', OLD.company_scoped));
END;

CREATE TRIGGER user_organisations_capture_insert AFTER INSERT ON user_organisations WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('user_organisations', 'I', json_object('user_id', NEW.user_id, 'organisation_id', NEW.organisation_id));
END;
CREATE TRIGGER user_organisations_capture_update AFTER UPDATE ON user_organisations WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('user_organisations', 'U', json_object('user_id', OLD.user_id, 'organisation_id', OLD.organisation_id), json_object('user_id', NEW.user_id, 'organisation_id', NEW.organisation_id));
END;
CREATE TRIGGER user_organisations_capture_delete AFTER DELETE ON user_organisations WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('user_organisations', 'D', json_object('user_id', OLD.user_id, 'organisation_id', OLD.organisation_id));
END;

CREATE TRIGGER organisation_access_managers_capture_insert AFTER INSERT ON organisation_access_managers WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('organisation_access_managers', 'I', json_object('organisation_id', NEW.organisation_id, 'user_id', NEW.user_id));
END;
CREATE TRIGGER organisation_access_managers_capture_update AFTER UPDATE ON organisation_access_managers WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('organisation_access_managers', 'U', json_object('organisation_id', OLD.organisation_id, 'user_id', OLD.user_id), json_object('organisation_id', NEW.organisation_id, 'user_id', NEW.user_id));
END;
CREATE TRIGGER organisation_access_managers_capture_delete AFTER DELETE ON organisation_access_managers WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('organisation_access_managers', 'D', json_object('organisation_id', OLD.organisation_id, 'user_id', OLD.user_id));
END;

CREATE TRIGGER grants_capture_insert AFTER INSERT ON grants WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('grants', 'I', json_object('user_id', NEW.user_id, 'profile_id', NEW.profile_id, 'group_id', NEW.group_id));
END;
CREATE TRIGGER grants_capture_update AFTER UPDATE ON grants WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('grants', 'U', json_object('user_id', OLD.user_id, 'profile_id', OLD.profile_id, 'group_id', OLD.group_id), json_object('user_id', NEW.user_id, 'profile_id', NEW.profile_id, 'group_id', NEW.group_id));
END;
CREATE TRIGGER grants_capture_delete AFTER DELETE ON grants WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('grants', 'D', json_object('user_id', OLD.user_id, 'profile_id', OLD.profile_id, 'group_id', OLD.group_id));
END;

CREATE TRIGGER tickets_capture_insert AFTER INSERT ON tickets WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('tickets', 'I', json_object('id', NEW.id, 'created_at', NEW.created_at, 'requester_id', NEW.requester_id, 'organisation_id', NEW.organisation_id, 'group_id', NEW.group_id, 'assignee_id', NEW.assignee_id, 'status', NEW.status));
END;
CREATE TRIGGER tickets_capture_update AFTER UPDATE ON tickets WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('tickets', 'U', json_object('id', OLD.id, 'created_at', OLD.created_at, 'requester_id', OLD.requester_id, 'organisation_id', OLD.organisation_id, 'group_id', OLD.group_id, 'assignee_id', OLD.assignee_id, 'status', OLD.status), json_object('id', NEW.id, 'created_at', NEW.created_at, 'requester_id', NEW.requester_id, 'organisation_id', NEW.organisation_id, 'group_id', NEW.group_id, 'assignee_id', NEW.assignee_id, 'status', NEW.status));
END;
CREATE TRIGGER tickets_capture_delete AFTER DELETE ON tickets WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('tickets', 'D', json_object('id', OLD.id, 'created_at', OLD.created_at, 'requester_id', OLD.requester_id, 'organisation_id', OLD.organisation_id, 'group_id', OLD.group_id, 'assignee_id', OLD.assignee_id, 'status', OLD.status));
END;

CREATE TRIGGER ticket_ccs_capture_insert AFTER INSERT ON ticket_ccs WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('ticket_ccs', 'I', json_object('ticket_id', NEW.ticket_id, 'user_id', NEW.user_id));
END;
CREATE TRIGGER ticket_ccs_capture_update AFTER UPDATE ON ticket_ccs WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('ticket_ccs', 'U', json_object('ticket_id', OLD.ticket_id, 'user_id', OLD.user_id), json_object('ticket_id', NEW.ticket_id, 'user_id', NEW.user_id));
END;
CREATE TRIGGER ticket_ccs_capture_delete AFTER DELETE ON ticket_ccs WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('ticket_ccs', 'D', json_object('ticket_id', OLD.ticket_id, 'user_id', OLD.user_id));
END;

CREATE TRIGGER ticket_participants_capture_insert AFTER INSERT ON ticket_participants WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('ticket_participants', 'I', json_object('ticket_id', NEW.ticket_id, 'user_id', NEW.user_id));
END;
CREATE TRIGGER ticket_participants_capture_update AFTER UPDATE ON ticket_participants WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('ticket_participants', 'U', json_object('ticket_id', OLD.ticket_id, 'user_id', OLD.user_id), json_object('ticket_id', NEW.ticket_id, 'user_id', NEW.user_id));
END;
CREATE TRIGGER ticket_participants_capture_delete AFTER DELETE ON ticket_participants WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('ticket_participants', 'D', json_object('ticket_id', OLD.ticket_id, 'user_id', OLD.user_id));
END;
