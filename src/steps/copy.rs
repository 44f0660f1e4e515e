//! `copy_chunk`: copies one primary-key range (design §5).

use serde::{Deserialize, Serialize};

use super::context::Context;
use super::error::StepError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyOutput {
    pub chunk_index: u32,
    pub rows: u64,
    pub bytes: u64,
    pub dirty: u64,
    pub done: bool,
}

pub async fn copy_chunk(
    _ctx: &Context,
    _index: u32,
    _owner: Option<&str>,
) -> Result<CopyOutput, StepError> {
    Err(StepError::fatal("copy_chunk: in progress"))
}
