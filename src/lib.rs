//! The PaaS Orchestrator of the INFN DataCloud. See `ARCHITECTURE.md` for where each
//! layer lives; `main.rs` only parses the command line and calls into this library.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod http;
pub mod legacy;
pub mod messaging;
pub mod policy;
pub mod secrets;
pub mod service;
pub mod state;
pub mod store;
pub mod telemetry;
