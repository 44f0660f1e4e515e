//! Shared harness for integration tests: `mod harness;` in a test file, then
//! `harness::mariadb::MariaDb::shared()` for the private MariaDB of this test binary.
#![allow(dead_code)]

pub mod mariadb;
pub mod output;
