//! `plan_chunks`: splits every table into primary-key ranges (design §5, §6).

use serde::{Deserialize, Serialize};

use super::context::Context;
use super::error::StepError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOutput {
    /// Chunks in this wave (the Map's item count).
    pub chunk_count: u32,
    /// Index of the wave's first chunk; item i copies chunk `wave_start + i`.
    pub wave_start: u32,
    pub total_chunks: u32,
    /// Chunks remain after this wave: the execution continues as new.
    pub more_waves: bool,
}

pub async fn plan_chunks(_ctx: &Context) -> Result<PlanOutput, StepError> {
    Err(StepError::fatal("plan_chunks: in progress"))
}
