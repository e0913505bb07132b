-- A small helpdesk of its own on PostgreSQL, the schema
-- examples/mapping/desk-postgres.yaml maps: nothing in it knows about
-- ticket-authz. tests/suite/mapped_postgres.rs creates it, follows it and writes
-- to it as the helpdesk would.

CREATE TABLE orgs (
    id       serial PRIMARY KEY,
    title    text NOT NULL,
    sees_all boolean NOT NULL DEFAULT false
);

CREATE TABLE people (
    id           bigserial PRIMARY KEY,
    handle       text NOT NULL UNIQUE,
    display_name text,
    mail         text,
    role         text NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'staff', 'admin')),
    blocked      boolean NOT NULL DEFAULT false,
    joined_at    timestamptz NOT NULL DEFAULT now(),
    org_id       integer REFERENCES orgs (id) ON DELETE SET NULL
);

CREATE TABLE teams (
    id        serial PRIMARY KEY,
    title     text NOT NULL,
    parent_id integer REFERENCES teams (id) ON DELETE SET NULL
);

CREATE TABLE roles (
    id         serial PRIMARY KEY,
    label      text NOT NULL,
    can_read   boolean NOT NULL DEFAULT true,
    can_write  boolean NOT NULL DEFAULT false,
    can_manage boolean NOT NULL DEFAULT false
);

-- team_id NULL: the role on every team.
CREATE TABLE memberships (
    person_id bigint NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    team_id   integer REFERENCES teams (id) ON DELETE CASCADE,
    role_id   integer NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    UNIQUE (person_id, team_id, role_id)
);

CREATE TABLE issues (
    id          bigserial PRIMARY KEY,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    reporter_id bigint REFERENCES people (id) ON DELETE SET NULL,
    org_id      integer REFERENCES orgs (id) ON DELETE SET NULL,
    team_id     integer REFERENCES teams (id) ON DELETE SET NULL,
    owner_id    bigint REFERENCES people (id) ON DELETE SET NULL,
    state       text NOT NULL DEFAULT 'new'
);

CREATE TABLE watchers (
    issue_id  bigint NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    person_id bigint NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    PRIMARY KEY (issue_id, person_id)
);

-- A conversation per issue; whoever posts in it takes part in the issue.
CREATE TABLE threads (
    id       bigserial PRIMARY KEY,
    issue_id bigint NOT NULL REFERENCES issues (id) ON DELETE CASCADE
);

CREATE TABLE posts (
    id        bigserial PRIMARY KEY,
    thread_id bigint NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    author_id bigint NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    body      text NOT NULL DEFAULT ''
);
CREATE INDEX posts_thread ON posts (thread_id);
