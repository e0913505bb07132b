-- The service-desk sections of access model §8 (projects and tasks, wiki
-- pages, inventory, invoices, leads, agenda, downloads) for SQLite: one
-- table per entity and one per list, with the same id checks and change
-- capture as the tables of 0001. A task's parent must be a task of the
-- same project: the composite key (project_id, parent_id) makes the
-- database refuse a parent in another project; a parent cycle is the
-- service's to refuse.

CREATE TABLE projects (
    id       TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    name     TEXT NOT NULL,
    owner_id TEXT REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE project_members (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'manager')),
    PRIMARY KEY (project_id, user_id)
);

CREATE TABLE tasks (
    id         TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    name       TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    parent_id  TEXT,
    UNIQUE (project_id, id),
    CHECK (parent_id IS NULL OR parent_id <> id),
    -- A subtask goes with its parent; a parent stays in its children's project.
    FOREIGN KEY (project_id, parent_id) REFERENCES tasks (project_id, id) ON DELETE CASCADE
);

CREATE TABLE task_members (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'manager')),
    PRIMARY KEY (task_id, user_id)
);

CREATE TABLE wiki_pages (
    id   TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    name TEXT NOT NULL
);

-- `access` says which list of the page the group is on.
CREATE TABLE wiki_page_groups (
    wiki_page_id TEXT NOT NULL REFERENCES wiki_pages (id) ON DELETE CASCADE,
    -- RESTRICT: dropping the last group would open the page to everyone.
    group_id     TEXT NOT NULL REFERENCES groups (id) ON DELETE RESTRICT,
    access       TEXT NOT NULL CHECK (access IN ('read', 'write')),
    PRIMARY KEY (wiki_page_id, group_id, access)
);

CREATE TABLE inventory_items (
    id       TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    name     TEXT NOT NULL,
    owner_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    public INTEGER NOT NULL DEFAULT 0 CHECK (public IN (0, 1))
);

CREATE TABLE inventory_item_companies (
    inventory_item_id TEXT NOT NULL REFERENCES inventory_items (id) ON DELETE CASCADE,
    company_id        TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    PRIMARY KEY (inventory_item_id, company_id)
);

CREATE TABLE inventory_item_users (
    inventory_item_id TEXT NOT NULL REFERENCES inventory_items (id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (inventory_item_id, user_id)
);

CREATE TABLE invoices (
    id         TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    company_id TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE
);

CREATE TABLE leads (
    id         TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    name       TEXT NOT NULL,
    -- RESTRICT: a lead without a company is visible to every holder of CLR.
    company_id TEXT REFERENCES companies (id) ON DELETE RESTRICT,
    owner_id   TEXT REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE agenda_events (
    id       TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    name     TEXT NOT NULL,
    owner_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    public INTEGER NOT NULL DEFAULT 0 CHECK (public IN (0, 1))
);

CREATE TABLE agenda_event_groups (
    agenda_event_id TEXT NOT NULL REFERENCES agenda_events (id) ON DELETE CASCADE,
    group_id        TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (agenda_event_id, group_id)
);

CREATE TABLE download_categories (
    id   TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    name TEXT NOT NULL
);

CREATE TABLE download_category_groups (
    download_category_id TEXT NOT NULL REFERENCES download_categories (id) ON DELETE CASCADE,
    -- RESTRICT: dropping the last group would open the category to every holder of the flag.
    group_id             TEXT NOT NULL REFERENCES groups (id) ON DELETE RESTRICT,
    PRIMARY KEY (download_category_id, group_id)
);

CREATE TABLE downloads (
    id          TEXT PRIMARY KEY NOT NULL CHECK (id <> '' AND length(CAST(id AS BLOB)) <= 128),
    name        TEXT NOT NULL,
    category_id TEXT NOT NULL REFERENCES download_categories (id) ON DELETE CASCADE
);

CREATE TRIGGER projects_capture_insert AFTER INSERT ON projects WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('projects', 'I', json_object('id', NEW.id, 'name', NEW.name, 'owner_id', NEW.owner_id));
END;
CREATE TRIGGER projects_capture_update AFTER UPDATE ON projects WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('projects', 'U', json_object('id', OLD.id, 'name', OLD.name, 'owner_id', OLD.owner_id), json_object('id', NEW.id, 'name', NEW.name, 'owner_id', NEW.owner_id));
END;
CREATE TRIGGER projects_capture_delete AFTER DELETE ON projects WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('projects', 'D', json_object('id', OLD.id, 'name', OLD.name, 'owner_id', OLD.owner_id));
END;

CREATE TRIGGER project_members_capture_insert AFTER INSERT ON project_members WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('project_members', 'I', json_object('project_id', NEW.project_id, 'user_id', NEW.user_id, 'role', NEW.role));
END;
CREATE TRIGGER project_members_capture_update AFTER UPDATE ON project_members WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('project_members', 'U', json_object('project_id', OLD.project_id, 'user_id', OLD.user_id, 'role', OLD.role), json_object('project_id', NEW.project_id, 'user_id', NEW.user_id, 'role', NEW.role));
END;
CREATE TRIGGER project_members_capture_delete AFTER DELETE ON project_members WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('project_members', 'D', json_object('project_id', OLD.project_id, 'user_id', OLD.user_id, 'role', OLD.role));
END;

CREATE TRIGGER tasks_capture_insert AFTER INSERT ON tasks WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('tasks', 'I', json_object('id', NEW.id, 'name', NEW.name, 'project_id', NEW.project_id, 'parent_id', NEW.parent_id));
END;
CREATE TRIGGER tasks_capture_update AFTER UPDATE ON tasks WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('tasks', 'U', json_object('id', OLD.id, 'name', OLD.name, 'project_id', OLD.project_id, 'parent_id', OLD.parent_id), json_object('id', NEW.id, 'name', NEW.name, 'project_id', NEW.project_id, 'parent_id', NEW.parent_id));
END;
CREATE TRIGGER tasks_capture_delete AFTER DELETE ON tasks WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('tasks', 'D', json_object('id', OLD.id, 'name', OLD.name, 'project_id', OLD.project_id, 'parent_id', OLD.parent_id));
END;

CREATE TRIGGER task_members_capture_insert AFTER INSERT ON task_members WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('task_members', 'I', json_object('task_id', NEW.task_id, 'user_id', NEW.user_id, 'role', NEW.role));
END;
CREATE TRIGGER task_members_capture_update AFTER UPDATE ON task_members WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('task_members', 'U', json_object('task_id', OLD.task_id, 'user_id', OLD.user_id, 'role', OLD.role), json_object('task_id', NEW.task_id, 'user_id', NEW.user_id, 'role', NEW.role));
END;
CREATE TRIGGER task_members_capture_delete AFTER DELETE ON task_members WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('task_members', 'D', json_object('task_id', OLD.task_id, 'user_id', OLD.user_id, 'role', OLD.role));
END;

CREATE TRIGGER wiki_pages_capture_insert AFTER INSERT ON wiki_pages WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('wiki_pages', 'I', json_object('id', NEW.id, 'name', NEW.name));
END;
CREATE TRIGGER wiki_pages_capture_update AFTER UPDATE ON wiki_pages WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('wiki_pages', 'U', json_object('id', OLD.id, 'name', OLD.name), json_object('id', NEW.id, 'name', NEW.name));
END;
CREATE TRIGGER wiki_pages_capture_delete AFTER DELETE ON wiki_pages WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('wiki_pages', 'D', json_object('id', OLD.id, 'name', OLD.name));
END;

CREATE TRIGGER wiki_page_groups_capture_insert AFTER INSERT ON wiki_page_groups WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('wiki_page_groups', 'I', json_object('wiki_page_id', NEW.wiki_page_id, 'group_id', NEW.group_id, 'access', NEW.access));
END;
CREATE TRIGGER wiki_page_groups_capture_update AFTER UPDATE ON wiki_page_groups WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('wiki_page_groups', 'U', json_object('wiki_page_id', OLD.wiki_page_id, 'group_id', OLD.group_id, 'access', OLD.access), json_object('wiki_page_id', NEW.wiki_page_id, 'group_id', NEW.group_id, 'access', NEW.access));
END;
CREATE TRIGGER wiki_page_groups_capture_delete AFTER DELETE ON wiki_page_groups WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('wiki_page_groups', 'D', json_object('wiki_page_id', OLD.wiki_page_id, 'group_id', OLD.group_id, 'access', OLD.access));
END;

CREATE TRIGGER inventory_items_capture_insert AFTER INSERT ON inventory_items WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('inventory_items', 'I', json_object('id', NEW.id, 'name', NEW.name, 'owner_id', NEW.owner_id, 'public', NEW.public));
END;
CREATE TRIGGER inventory_items_capture_update AFTER UPDATE ON inventory_items WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('inventory_items', 'U', json_object('id', OLD.id, 'name', OLD.name, 'owner_id', OLD.owner_id, 'public', OLD.public), json_object('id', NEW.id, 'name', NEW.name, 'owner_id', NEW.owner_id, 'public', NEW.public));
END;
CREATE TRIGGER inventory_items_capture_delete AFTER DELETE ON inventory_items WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('inventory_items', 'D', json_object('id', OLD.id, 'name', OLD.name, 'owner_id', OLD.owner_id, 'public', OLD.public));
END;

CREATE TRIGGER inventory_item_companies_capture_insert AFTER INSERT ON inventory_item_companies WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('inventory_item_companies', 'I', json_object('inventory_item_id', NEW.inventory_item_id, 'company_id', NEW.company_id));
END;
CREATE TRIGGER inventory_item_companies_capture_update AFTER UPDATE ON inventory_item_companies WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('inventory_item_companies', 'U', json_object('inventory_item_id', OLD.inventory_item_id, 'company_id', OLD.company_id), json_object('inventory_item_id', NEW.inventory_item_id, 'company_id', NEW.company_id));
END;
CREATE TRIGGER inventory_item_companies_capture_delete AFTER DELETE ON inventory_item_companies WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('inventory_item_companies', 'D', json_object('inventory_item_id', OLD.inventory_item_id, 'company_id', OLD.company_id));
END;

CREATE TRIGGER inventory_item_users_capture_insert AFTER INSERT ON inventory_item_users WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('inventory_item_users', 'I', json_object('inventory_item_id', NEW.inventory_item_id, 'user_id', NEW.user_id));
END;
CREATE TRIGGER inventory_item_users_capture_update AFTER UPDATE ON inventory_item_users WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('inventory_item_users', 'U', json_object('inventory_item_id', OLD.inventory_item_id, 'user_id', OLD.user_id), json_object('inventory_item_id', NEW.inventory_item_id, 'user_id', NEW.user_id));
END;
CREATE TRIGGER inventory_item_users_capture_delete AFTER DELETE ON inventory_item_users WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('inventory_item_users', 'D', json_object('inventory_item_id', OLD.inventory_item_id, 'user_id', OLD.user_id));
END;

CREATE TRIGGER invoices_capture_insert AFTER INSERT ON invoices WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('invoices', 'I', json_object('id', NEW.id, 'company_id', NEW.company_id));
END;
CREATE TRIGGER invoices_capture_update AFTER UPDATE ON invoices WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('invoices', 'U', json_object('id', OLD.id, 'company_id', OLD.company_id), json_object('id', NEW.id, 'company_id', NEW.company_id));
END;
CREATE TRIGGER invoices_capture_delete AFTER DELETE ON invoices WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('invoices', 'D', json_object('id', OLD.id, 'company_id', OLD.company_id));
END;

CREATE TRIGGER leads_capture_insert AFTER INSERT ON leads WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('leads', 'I', json_object('id', NEW.id, 'name', NEW.name, 'company_id', NEW.company_id, 'owner_id', NEW.owner_id));
END;
CREATE TRIGGER leads_capture_update AFTER UPDATE ON leads WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('leads', 'U', json_object('id', OLD.id, 'name', OLD.name, 'company_id', OLD.company_id, 'owner_id', OLD.owner_id), json_object('id', NEW.id, 'name', NEW.name, 'company_id', NEW.company_id, 'owner_id', NEW.owner_id));
END;
CREATE TRIGGER leads_capture_delete AFTER DELETE ON leads WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('leads', 'D', json_object('id', OLD.id, 'name', OLD.name, 'company_id', OLD.company_id, 'owner_id', OLD.owner_id));
END;

CREATE TRIGGER agenda_events_capture_insert AFTER INSERT ON agenda_events WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('agenda_events', 'I', json_object('id', NEW.id, 'name', NEW.name, 'owner_id', NEW.owner_id, 'public', NEW.public));
END;
CREATE TRIGGER agenda_events_capture_update AFTER UPDATE ON agenda_events WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('agenda_events', 'U', json_object('id', OLD.id, 'name', OLD.name, 'owner_id', OLD.owner_id, 'public', OLD.public), json_object('id', NEW.id, 'name', NEW.name, 'owner_id', NEW.owner_id, 'public', NEW.public));
END;
CREATE TRIGGER agenda_events_capture_delete AFTER DELETE ON agenda_events WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('agenda_events', 'D', json_object('id', OLD.id, 'name', OLD.name, 'owner_id', OLD.owner_id, 'public', OLD.public));
END;

CREATE TRIGGER agenda_event_groups_capture_insert AFTER INSERT ON agenda_event_groups WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('agenda_event_groups', 'I', json_object('agenda_event_id', NEW.agenda_event_id, 'group_id', NEW.group_id));
END;
CREATE TRIGGER agenda_event_groups_capture_update AFTER UPDATE ON agenda_event_groups WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('agenda_event_groups', 'U', json_object('agenda_event_id', OLD.agenda_event_id, 'group_id', OLD.group_id), json_object('agenda_event_id', NEW.agenda_event_id, 'group_id', NEW.group_id));
END;
CREATE TRIGGER agenda_event_groups_capture_delete AFTER DELETE ON agenda_event_groups WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('agenda_event_groups', 'D', json_object('agenda_event_id', OLD.agenda_event_id, 'group_id', OLD.group_id));
END;

CREATE TRIGGER download_categories_capture_insert AFTER INSERT ON download_categories WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('download_categories', 'I', json_object('id', NEW.id, 'name', NEW.name));
END;
CREATE TRIGGER download_categories_capture_update AFTER UPDATE ON download_categories WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('download_categories', 'U', json_object('id', OLD.id, 'name', OLD.name), json_object('id', NEW.id, 'name', NEW.name));
END;
CREATE TRIGGER download_categories_capture_delete AFTER DELETE ON download_categories WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('download_categories', 'D', json_object('id', OLD.id, 'name', OLD.name));
END;

CREATE TRIGGER download_category_groups_capture_insert AFTER INSERT ON download_category_groups WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('download_category_groups', 'I', json_object('download_category_id', NEW.download_category_id, 'group_id', NEW.group_id));
END;
CREATE TRIGGER download_category_groups_capture_update AFTER UPDATE ON download_category_groups WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('download_category_groups', 'U', json_object('download_category_id', OLD.download_category_id, 'group_id', OLD.group_id), json_object('download_category_id', NEW.download_category_id, 'group_id', NEW.group_id));
END;
CREATE TRIGGER download_category_groups_capture_delete AFTER DELETE ON download_category_groups WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('download_category_groups', 'D', json_object('download_category_id', OLD.download_category_id, 'group_id', OLD.group_id));
END;

CREATE TRIGGER downloads_capture_insert AFTER INSERT ON downloads WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, new_row) VALUES ('downloads', 'I', json_object('id', NEW.id, 'name', NEW.name, 'category_id', NEW.category_id));
END;
CREATE TRIGGER downloads_capture_update AFTER UPDATE ON downloads WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row) VALUES ('downloads', 'U', json_object('id', OLD.id, 'name', OLD.name, 'category_id', OLD.category_id), json_object('id', NEW.id, 'name', NEW.name, 'category_id', NEW.category_id));
END;
CREATE TRIGGER downloads_capture_delete AFTER DELETE ON downloads WHEN (SELECT bulk FROM ticket_authz_state WHERE id = 1) = 0 BEGIN
    INSERT INTO ticket_authz_changes (table_name, op, old_row) VALUES ('downloads', 'D', json_object('id', OLD.id, 'name', OLD.name, 'category_id', OLD.category_id));
END;
