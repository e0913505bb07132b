//! Every integration test, one module a file, in one test binary: built
//! once, optimised, instead of once a file (28 release binaries, each
//! instantiating tokio, tonic and sqlx again, were most of CI's time).
//! Each module still reads as the file it was: its own doc line, the
//! shared helpers in `common`.

mod common;

mod apply;
mod authzen;
mod cached_lists;
mod cli;
mod connect;
mod console;
mod console_browser;
mod csv_import;
mod dataset;
mod db;
mod ext_authz;
mod fleet;
mod follow;
mod grpc;
mod helm;
mod load;
mod mapped;
mod mapped_follow;
mod mapped_postgres;
mod properties;
mod rotation;
mod rules;
mod scenarios;
mod sections;
mod telemetry;
mod ticket_cache;
