//! HTTP integration tests: the real application on 127.0.0.1:0, spoken to over HTTP.

#[path = "../common/mod.rs"]
mod common;
mod helpers;

mod auth;
mod deployments;
mod dev;
mod health;
mod logs;
mod opa;
mod resources;
mod templates;
mod users;
