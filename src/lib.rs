//! ticket-authz: answers helpdesk access questions (may this user see,
//! comment on, edit this ticket? which tickets may this user see?) from an
//! in-memory, indexed snapshot of the helpdesk's permission data.
//!
//! * [`core`]: the decision core, pure functions of (snapshot, request).
//! * [`snapshot`]: the indexed, copy-on-write data of one revision.
//! * [`dataset`]: the YAML dataset/scenario format and its validation.
//! * [`model`]: domain entities shared by all of the above.
//! * [`app`]: the application service every transport calls.
//! * [`serve`]: the composition root (`run`), the port's layers, supervision.
//! * [`grpc`]: the gRPC edge; [`loadtest`]: the load generator, a tool.
//! * [`image`]: versioned binary images of a snapshot and of a change batch.
//! * [`follow`]: the one loop that keeps the store following a source;
//!   [`db`]: our SQL schema, one such source.

pub mod app;
pub mod authzen;
pub mod cli;
pub mod console;
pub mod core;
pub mod csv_import;
pub mod dataset;
pub mod db;
pub mod ext_authz;
pub mod flags;
pub mod fleet;
pub mod fleet_cmd;
pub mod follow;
pub mod generate;
pub mod grpc;
pub mod image;
pub mod loadtest;
pub mod mapped;
pub mod mapping;
pub mod model;
pub mod scenario;
pub mod serve;
pub mod serve_cmd;
pub mod snapshot;
pub mod store;
pub mod telemetry;
pub mod ticket_cache;
pub mod time;
pub mod yaml;
