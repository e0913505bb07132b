-- The Integria IMS 5.0 tables the `integria` preset reads, with their
-- column types and defaults (see ../shared/spec/source-integria.md), as a
-- test creates them: under Integria's empty sql_mode, InnoDB, utf8mb4 with
-- the case-insensitive collation. Columns the mapping does not read are
-- kept where they carry a default Integria relies on.
CREATE TABLE tgrupo (
  id_grupo mediumint unsigned NOT NULL AUTO_INCREMENT,
  nombre varchar(100) NOT NULL DEFAULT '',
  icon varchar(50) DEFAULT NULL,
  url varchar(150) DEFAULT NULL,
  banner varchar(150) DEFAULT NULL,
  parent mediumint unsigned NOT NULL DEFAULT '0',
  id_user_default varchar(60) NOT NULL DEFAULT '',
  forced_email tinyint(1) unsigned NOT NULL DEFAULT '1',
  lang varchar(10) DEFAULT NULL,
  id_inventory_default bigint unsigned NOT NULL DEFAULT '0',
  soft_limit int unsigned NOT NULL DEFAULT '0',
  hard_limit int unsigned NOT NULL DEFAULT '0',
  enforce_soft_limit int unsigned NOT NULL DEFAULT '0',
  id_incident_type mediumint unsigned NULL,
  email_queue text,
  PRIMARY KEY (id_grupo)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE tprofile (
  id int unsigned NOT NULL AUTO_INCREMENT,
  name varchar(150) NOT NULL DEFAULT '',
  ir tinyint(1) NOT NULL DEFAULT '0',
  iw tinyint(1) NOT NULL DEFAULT '0',
  im tinyint(1) NOT NULL DEFAULT '0',
  um tinyint(1) NOT NULL DEFAULT '0',
  dm tinyint(1) NOT NULL DEFAULT '0',
  fm tinyint(1) NOT NULL DEFAULT '0',
  ar tinyint(1) NOT NULL DEFAULT '0',
  aw tinyint(1) NOT NULL DEFAULT '0',
  am tinyint(1) NOT NULL DEFAULT '0',
  pr tinyint(1) NOT NULL DEFAULT '0',
  pw tinyint(1) NOT NULL DEFAULT '0',
  pm tinyint(1) NOT NULL DEFAULT '0',
  tw tinyint(1) NOT NULL DEFAULT '0',
  tm tinyint(1) NOT NULL DEFAULT '0',
  kr tinyint(1) NOT NULL DEFAULT '0',
  kw tinyint(1) NOT NULL DEFAULT '0',
  km tinyint(1) NOT NULL DEFAULT '0',
  vr tinyint(1) NOT NULL DEFAULT '0',
  vw tinyint(1) NOT NULL DEFAULT '0',
  vm tinyint(1) NOT NULL DEFAULT '0',
  wr tinyint(1) NOT NULL DEFAULT '0',
  ww tinyint(1) NOT NULL DEFAULT '0',
  wm tinyint(1) NOT NULL DEFAULT '0',
  cr tinyint(1) NOT NULL DEFAULT '0',
  cw tinyint(1) NOT NULL DEFAULT '0',
  cm tinyint(1) NOT NULL DEFAULT '0',
  cn tinyint(1) NOT NULL DEFAULT '0',
  frr tinyint(1) NOT NULL DEFAULT '0',
  frw tinyint(1) NOT NULL DEFAULT '0',
  frm tinyint(1) NOT NULL DEFAULT '0',
  si tinyint(1) NOT NULL DEFAULT '0',
  qa tinyint(1) NOT NULL DEFAULT '0',
  rr tinyint(1) NOT NULL DEFAULT '0',
  rw tinyint(1) NOT NULL DEFAULT '0',
  rm tinyint(1) NOT NULL DEFAULT '0',
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE tcompany (
  id mediumint unsigned NOT NULL AUTO_INCREMENT,
  name varchar(300) NOT NULL DEFAULT '',
  address varchar(300) NOT NULL DEFAULT '',
  fiscal_id varchar(250) DEFAULT NULL,
  country tinytext,
  website tinytext,
  comments text,
  id_company_role mediumint unsigned NOT NULL,
  id_parent mediumint unsigned DEFAULT NULL,
  manager varchar(150) NOT NULL DEFAULT '',
  last_update datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  payment_conditions mediumint NOT NULL DEFAULT '0',
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE tusuario (
  id_usuario varchar(60) NOT NULL DEFAULT '0',
  nombre_real varchar(125) NOT NULL DEFAULT '',
  password varchar(45) DEFAULT NULL,
  comentarios varchar(200) DEFAULT NULL,
  fecha_registro datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  direccion varchar(100) DEFAULT '',
  telefono varchar(100) DEFAULT '',
  nivel tinyint(1) NOT NULL DEFAULT '0',
  avatar varchar(100) DEFAULT 'people_1',
  lang varchar(10) DEFAULT '',
  pwdhash varchar(100) DEFAULT '',
  disabled int NOT NULL DEFAULT '0',
  id_company int unsigned DEFAULT '0',
  simple_mode tinyint unsigned NOT NULL DEFAULT '0',
  force_change_pass tinyint unsigned NOT NULL DEFAULT '0',
  last_pass_change datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  last_failed_login datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  failed_attempt int NOT NULL DEFAULT '0',
  login_blocked tinyint unsigned NOT NULL DEFAULT '0',
  num_employee varchar(125) NOT NULL DEFAULT '',
  enable_login tinyint(1) NOT NULL DEFAULT '1',
  location tinytext,
  PRIMARY KEY (id_usuario)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE tusuario_perfil (
  id_up bigint unsigned NOT NULL AUTO_INCREMENT,
  id_usuario varchar(60) NOT NULL DEFAULT '',
  id_perfil int unsigned NOT NULL DEFAULT '0',
  id_grupo mediumint unsigned NOT NULL DEFAULT '0',
  assigned_by varchar(100) NOT NULL DEFAULT '',
  PRIMARY KEY (id_up),
  KEY id_usuario (id_usuario)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE tincidencia (
  id_incidencia bigint unsigned NOT NULL AUTO_INCREMENT,
  inicio datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  cierre datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  titulo mediumtext,
  descripcion mediumtext,
  id_usuario varchar(60) NOT NULL DEFAULT '',
  estado tinyint unsigned NOT NULL DEFAULT '0',
  prioridad tinyint unsigned NOT NULL DEFAULT '0',
  id_grupo mediumint unsigned NOT NULL DEFAULT '0',
  actualizacion datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  id_creator varchar(60) DEFAULT NULL,
  notify_email tinyint unsigned NOT NULL DEFAULT '0',
  id_task int NOT NULL DEFAULT '0',
  resolution tinyint unsigned NOT NULL DEFAULT '0',
  epilog mediumtext,
  id_parent bigint unsigned DEFAULT NULL,
  sla_disabled tinyint unsigned NOT NULL DEFAULT '0',
  affected_sla_id tinyint unsigned NOT NULL DEFAULT '0',
  id_incident_type mediumint unsigned DEFAULT NULL,
  score mediumint NOT NULL DEFAULT '0',
  email_copy mediumtext,
  editor varchar(60) NOT NULL DEFAULT '',
  id_group_creator mediumint unsigned NOT NULL DEFAULT '0',
  last_stat_check datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  closed_by varchar(60) NOT NULL DEFAULT '',
  extra_data varchar(100) NOT NULL DEFAULT '',
  PRIMARY KEY (id_incidencia),
  KEY incident_index_1 (id_usuario, id_incidencia)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE tworkunit (
  id int unsigned NOT NULL AUTO_INCREMENT,
  timestamp datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  duration float(10,2) NOT NULL DEFAULT '0.00',
  id_user varchar(125) DEFAULT NULL,
  description mediumtext NOT NULL,
  have_cost tinyint unsigned NOT NULL DEFAULT '0',
  id_profile int unsigned NOT NULL DEFAULT '0',
  locked varchar(125) NOT NULL DEFAULT '',
  public tinyint unsigned NOT NULL DEFAULT '1',
  work_home tinyint unsigned NOT NULL DEFAULT '0',
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE tworkunit_incident (
  id int unsigned NOT NULL AUTO_INCREMENT,
  id_incident bigint unsigned NOT NULL DEFAULT '0',
  id_workunit int unsigned NOT NULL DEFAULT '0',
  PRIMARY KEY (id),
  KEY id_incident (id_incident),
  KEY id_workunit (id_workunit)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE tincident_status (
  id mediumint unsigned NOT NULL AUTO_INCREMENT,
  name varchar(100) NOT NULL DEFAULT '',
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

INSERT INTO tincident_status (id, name) VALUES
  (1, 'New'), (2, 'Unconfirmed'), (3, 'Assigned'), (4, 'Re-opened'),
  (5, 'Pending to be closed'), (6, 'Pending on a third person'), (7, 'Closed');
INSERT INTO tgrupo (id_grupo, nombre) VALUES (1, 'All');
