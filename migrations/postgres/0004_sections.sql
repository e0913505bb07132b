-- The service-desk sections of access model §8 (projects and tasks, wiki
-- pages, inventory, invoices, leads, agenda, downloads): one table per
-- entity and one per list, with the same id checks and change capture as
-- the tables of 0001. A task's parent must be a task of the same project:
-- the composite key (project_id, parent_id) makes the database refuse a
-- parent in another project; a parent cycle is the service's to refuse.

CREATE TABLE projects (
    id       text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    name     text NOT NULL,
    owner_id text REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE project_members (
    project_id text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'manager')),
    PRIMARY KEY (project_id, user_id)
);

CREATE TABLE tasks (
    id         text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    name       text NOT NULL,
    project_id text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    parent_id  text,
    UNIQUE (project_id, id),
    CHECK (parent_id IS NULL OR parent_id <> id),
    -- A subtask goes with its parent; a parent stays in its children's project.
    FOREIGN KEY (project_id, parent_id) REFERENCES tasks (project_id, id) ON DELETE CASCADE
);

CREATE TABLE task_members (
    task_id text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'manager')),
    PRIMARY KEY (task_id, user_id)
);

CREATE TABLE wiki_pages (
    id   text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    name text NOT NULL
);

-- `access` says which list of the page the group is on.
CREATE TABLE wiki_page_groups (
    wiki_page_id text NOT NULL REFERENCES wiki_pages (id) ON DELETE CASCADE,
    -- RESTRICT: dropping the last group would open the page to everyone.
    group_id     text NOT NULL REFERENCES groups (id) ON DELETE RESTRICT,
    access       text NOT NULL CHECK (access IN ('read', 'write')),
    PRIMARY KEY (wiki_page_id, group_id, access)
);

CREATE TABLE inventory_items (
    id       text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    name     text NOT NULL,
    owner_id text REFERENCES users (id) ON DELETE SET NULL,
    public   boolean NOT NULL DEFAULT false
);

CREATE TABLE inventory_item_companies (
    inventory_item_id text NOT NULL REFERENCES inventory_items (id) ON DELETE CASCADE,
    company_id        text NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    PRIMARY KEY (inventory_item_id, company_id)
);

CREATE TABLE inventory_item_users (
    inventory_item_id text NOT NULL REFERENCES inventory_items (id) ON DELETE CASCADE,
    user_id           text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (inventory_item_id, user_id)
);

CREATE TABLE invoices (
    id         text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    company_id text NOT NULL REFERENCES companies (id) ON DELETE CASCADE
);

CREATE TABLE leads (
    id         text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    name       text NOT NULL,
    -- RESTRICT: a lead without a company is visible to every holder of CLR.
    company_id text REFERENCES companies (id) ON DELETE RESTRICT,
    owner_id   text REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE agenda_events (
    id       text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    name     text NOT NULL,
    owner_id text REFERENCES users (id) ON DELETE SET NULL,
    public   boolean NOT NULL DEFAULT false
);

CREATE TABLE agenda_event_groups (
    agenda_event_id text NOT NULL REFERENCES agenda_events (id) ON DELETE CASCADE,
    group_id        text NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (agenda_event_id, group_id)
);

CREATE TABLE download_categories (
    id   text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    name text NOT NULL
);

CREATE TABLE download_category_groups (
    download_category_id text NOT NULL REFERENCES download_categories (id) ON DELETE CASCADE,
    -- RESTRICT: dropping the last group would open the category to every holder of the flag.
    group_id             text NOT NULL REFERENCES groups (id) ON DELETE RESTRICT,
    PRIMARY KEY (download_category_id, group_id)
);

CREATE TABLE downloads (
    id          text PRIMARY KEY CHECK (ticket_authz_valid_id(id)),
    name        text NOT NULL,
    category_id text NOT NULL REFERENCES download_categories (id) ON DELETE CASCADE
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['projects', 'project_members', 'tasks', 'task_members', 'wiki_pages',
        'wiki_page_groups', 'inventory_items', 'inventory_item_companies', 'inventory_item_users',
        'invoices', 'leads', 'agenda_events', 'agenda_event_groups', 'download_categories',
        'download_category_groups', 'downloads']
    LOOP
        EXECUTE format('CREATE TRIGGER ticket_authz_capture AFTER INSERT OR UPDATE OR DELETE ON %I '
                       'FOR EACH ROW EXECUTE FUNCTION ticket_authz_capture()', t);
        EXECUTE format('CREATE TRIGGER ticket_authz_capture_truncate AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION ticket_authz_truncate()', t);
    END LOOP;
END $$;
