pub mod engine;
pub mod store;
