//! A typed client for the REST API of the Infrastructure Manager (IM), the service that
//! turns a TOSCA template into virtual machines on a cloud.
//!
//! The orchestrator talks to IM only through the [`Im`] trait, so the deployment engine
//! can be driven by [`ImClient`] (the real thing, over HTTP) or by anything else that
//! implements the trait. Errors are typed by what the caller does next: retry later
//! ([`ImError::is_transient`]), fail the attempt, or treat a missing infrastructure as
//! already gone.
//!
//! IM's API has quirks (a doubly nested `state`, error bodies in two shapes, empty `200`
//! bodies, a `400` where a `401` belongs); they are handled here and listed in
//! `/work/shared/reference/im.md`. The response readers live in [`parse`] so they can be
//! tested on recorded bodies.
//!
//! With the `fake` feature, [`fake::FakeIm`] is an in-process IM for tests that
//! reproduces those quirks and can be scripted (state sequences, failures, delays).

mod auth;
mod client;
mod error;
mod model;
pub mod parse;

#[cfg(feature = "fake")]
pub mod fake;

pub use auth::{parse_auth_header, AuthHeader};
pub use client::{Im, ImClient};
pub use error::ImError;
pub use model::{InfraId, InfraState, StateReport, VmAction, VmInfo};
