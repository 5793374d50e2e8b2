//! Plain types and rules of the orchestrator: statuses with their wire codes, the list
//! query model, timestamps. Nothing here does I/O or knows about HTTP or SQL, so the
//! rules can be tested on their own and shared by every layer.

pub mod deployment;
pub mod job;
pub mod list;
pub mod status;
pub mod template;
pub mod time;
pub mod user;

pub use deployment::{Attempt, Deployment, LogLine, Resource};
pub use job::{Job, JobKind, JobState};
pub use status::{DeploymentStatus, ResourceStatus, Task};
pub use template::Template;
pub use time::Timestamp;
pub use user::User;
