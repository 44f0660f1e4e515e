//! The migration steps (design §5): plain async functions taking a [`Context`], wrapped by the
//! Lambda functions and by the local runner. Each returns a small JSON-able value.

pub mod binlog;
pub mod budget;
pub mod context;
pub mod copy;
pub mod create_schema;
mod ddl_guard;
pub mod dispatch;
pub mod ended;
pub mod error;
pub mod heartbeat;
pub mod lifecycle;
pub mod objects;
pub mod plan;
pub mod precheck;
pub mod verify;
mod verify_recheck;
pub mod window;

pub use context::Context;
pub use create_schema::{create_schema, SchemaOutput};
pub use dispatch::{run_step, Step, StepInput};
pub use error::{ErrorName, StepError};
pub use lifecycle::{begin, finish, BeginOutput, FinishOutput};
pub use precheck::{precheck, CheckItem, PrecheckReport, Status};
