//! TOSCA Simple Profile (1.0–1.3) for the orchestrator: a parser whose errors carry
//! line and column, the type hierarchy (normative types built in, template and
//! imported types extending them), input validation with every TOSCA type and
//! constraint, node instances with `required_by`, and rendering for IM.
//!
//! The crate does no I/O: imports are fetched by the caller, who learns what to
//! fetch from [`imports_of`] and hands the texts to [`Template::parse_with_imports`].

pub mod error;
pub mod instances;
pub mod render;
pub mod template;
pub mod types;
pub mod values;
pub mod yaml;

pub use error::{Error, ErrorKind, Pos};
pub use instances::NodeInstance;
pub use template::{
    imports_of, Import, InputDef, NodeTemplate, Output, Requirement, ResolvedInputs, Template,
};
pub use values::Violation;
