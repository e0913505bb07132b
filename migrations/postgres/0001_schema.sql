-- ticket-authz schema for PostgreSQL: the entities of the access model,
-- and change capture that gives every committed transaction a revision in
-- commit order.

CREATE FUNCTION ticket_authz_valid_id(id text) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$ SELECT id <> '' AND octet_length(id) <= 128 $$;

CREATE TABLE organisations (
    id            text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    name          text NOT NULL,
    ticket_access text NOT NULL DEFAULT 'own' CHECK (ticket_access IN ('own', 'view_all', 'comment_all'))
);

CREATE TABLE organisation_domains (
    organisation_id text NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    domain          text NOT NULL CHECK (domain <> '' AND domain = lower(domain)),
    added_at        timestamptz NOT NULL,
    PRIMARY KEY (organisation_id, domain)
);
CREATE INDEX organisation_domains_domain ON organisation_domains (domain);

CREATE TABLE partnerships (
    partner_id text NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    client_id  text NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    since      timestamptz NOT NULL,
    PRIMARY KEY (partner_id, client_id),
    CHECK (partner_id <> client_id)
);

CREATE TABLE groups (
    id                 text PRIMARY KEY CHECK (ticket_authz_valid_id(id) AND id <> '*'),
    name               text NOT NULL,
    parent_id          text REFERENCES groups (id) ON DELETE RESTRICT,
    propagate          boolean NOT NULL DEFAULT false,
    open_ticket_limit  integer NOT NULL DEFAULT 0 CHECK (open_ticket_limit >= 0),
    enforce_open_limit boolean NOT NULL DEFAULT false,
    total_ticket_limit integer NOT NULL DEFAULT 0 CHECK (total_ticket_limit >= 0),
    CHECK (parent_id IS NULL OR parent_id <> id)
);

CREATE TABLE profiles (
    id   text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    name text NOT NULL
);

CREATE TABLE profile_flags (
    profile_id text NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    flag       text NOT NULL CHECK (flag IN (
        'IR', 'IW', 'IM', 'IC', 'SI', 'QA', 'KR', 'KW', 'KM', 'FRR', 'FRW', 'FRM', 'VR', 'VW', 'VM',
        'RR', 'RM', 'WR', 'WW', 'WM', 'PR', 'PM', 'CR', 'CW', 'CM', 'CIR', 'CIW', 'CIM', 'CLR', 'CLW',
        'CLM', 'AR', 'AW', 'AM', 'UM', 'DM', 'FM', 'HR')),
    PRIMARY KEY (profile_id, flag)
);

CREATE TABLE companies (
    id        text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    name      text NOT NULL,
    parent_id text REFERENCES companies (id) ON DELETE RESTRICT,
    -- users.id; the foreign key is added below, after users exists.
    owner_id  text,
    CHECK (parent_id IS NULL OR parent_id <> id)
);

CREATE TABLE users (
    id                      text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    email                   text CHECK (email IS NULL OR email LIKE '_%@_%'),
    name                    text,
    created_at              timestamptz NOT NULL,
    kind                    text NOT NULL DEFAULT 'end_user' CHECK (kind IN ('end_user', 'agent', 'superadmin')),
    suspended               boolean NOT NULL DEFAULT false,
    ticket_access           text NOT NULL DEFAULT 'own' CHECK (ticket_access IN ('own', 'organisation')),
    default_organisation_id text REFERENCES organisations (id) ON DELETE SET NULL,
    company_id              text REFERENCES companies (id) ON DELETE SET NULL,
    company_scoped          boolean NOT NULL DEFAULT false
);
ALTER TABLE companies ADD FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE SET NULL;

CREATE TABLE user_organisations (
    user_id         text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organisation_id text NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, organisation_id)
);

CREATE TABLE organisation_access_managers (
    organisation_id text NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    user_id         text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (organisation_id, user_id)
);

-- group_id NULL means every group (the access model's "*").
CREATE TABLE grants (
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    profile_id text NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    group_id   text REFERENCES groups (id) ON DELETE CASCADE,
    group_key  text GENERATED ALWAYS AS (coalesce(group_id, '*')) STORED,
    PRIMARY KEY (user_id, profile_id, group_key)
);

CREATE TABLE tickets (
    id              text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    created_at      timestamptz NOT NULL,
    requester_id    text NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    organisation_id text REFERENCES organisations (id) ON DELETE SET NULL,
    group_id        text REFERENCES groups (id) ON DELETE SET NULL,
    assignee_id     text REFERENCES users (id) ON DELETE SET NULL,
    status          text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'open', 'pending', 'on_hold', 'solved', 'closed'))
);

CREATE TABLE ticket_ccs (
    ticket_id text NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    user_id   text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (ticket_id, user_id)
);

CREATE TABLE ticket_participants (
    ticket_id text NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    user_id   text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (ticket_id, user_id)
);

-- Change capture ---------------------------------------------------------

-- One row per committed writing transaction. `revision` is given at commit
-- time under a transaction-scoped advisory lock, so revisions follow commit
-- order: once revision R is visible, every lower one that committed is too.
CREATE SEQUENCE ticket_authz_revision_seq;

CREATE TABLE ticket_authz_transactions (
    xid         xid8 PRIMARY KEY,
    revision    bigint UNIQUE,
    -- A bulk load (`ticket-authz import`) asks readers to reload in full.
    bulk        boolean NOT NULL DEFAULT false,
    committed_at timestamptz
);

-- Row images of every change, for incremental refresh.
CREATE TABLE ticket_authz_changes (
    seq        bigserial PRIMARY KEY,
    xid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    table_name text NOT NULL,
    op         char(1) NOT NULL CHECK (op IN ('I', 'U', 'D')),
    old_row    jsonb,
    new_row    jsonb
);
CREATE INDEX ticket_authz_changes_xid ON ticket_authz_changes (xid);

-- Registers the current transaction once; its commit trigger then runs.
CREATE FUNCTION ticket_authz_register_transaction() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_authz_transactions (xid) VALUES (pg_current_xact_id())
    ON CONFLICT (xid) DO NOTHING;
END $$;

CREATE FUNCTION ticket_authz_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticket_authz_register_transaction();
    IF current_setting('ticket_authz.bulk', true) = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row)
    VALUES (TG_TABLE_NAME, left(TG_OP, 1),
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
END $$;

-- Runs at commit (deferred), once per transaction: takes the revision lock,
-- numbers the transaction and signals listeners. The lock is held until the
-- transaction ends, so the next writer numbers itself only after this one
-- is visible.
CREATE FUNCTION ticket_authz_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rev bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7316846221029813);
    rev := nextval('ticket_authz_revision_seq');
    UPDATE ticket_authz_transactions
       SET revision = rev,
           committed_at = clock_timestamp(),
           bulk = coalesce(current_setting('ticket_authz.bulk', true), '') = 'on'
     WHERE xid = NEW.xid;
    PERFORM pg_notify('ticket_authz', rev::text);
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER ticket_authz_commit
    AFTER INSERT ON ticket_authz_transactions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ticket_authz_commit();

-- TRUNCATE has no row images: the transaction becomes a bulk change, which
-- readers apply by reloading in full.
CREATE FUNCTION ticket_authz_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticket_authz_register_transaction();
    PERFORM set_config('ticket_authz.bulk', 'on', true);
    RETURN NULL;
END $$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['organisations', 'organisation_domains', 'partnerships', 'groups',
        'profiles', 'profile_flags', 'companies', 'users', 'user_organisations',
        'organisation_access_managers', 'grants', 'tickets', 'ticket_ccs', 'ticket_participants']
    LOOP
        EXECUTE format('CREATE TRIGGER ticket_authz_capture AFTER INSERT OR UPDATE OR DELETE ON %I '
                       'FOR EACH ROW EXECUTE FUNCTION ticket_authz_capture()', t);
        EXECUTE format('CREATE TRIGGER ticket_authz_capture_truncate AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION ticket_authz_truncate()', t);
    END LOOP;
END $$;

-- The latest revision: once a writer's transaction has committed and it has
-- read R from here, any answer at revision >= R reflects that transaction
-- and every one committed before it. Pass R as `min_revision`.
CREATE FUNCTION ticket_authz_revision() RETURNS bigint
    LANGUAGE sql STABLE AS $$ SELECT coalesce(max(revision), 0) FROM ticket_authz_transactions $$;
