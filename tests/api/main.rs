//! The decision server over HTTP, as agents and operators use it: each test
//! starts the real server on port 0 with a fresh database: a SQLite file, or
//! a PostgreSQL database with `TAME_TEST_BACKEND=postgres`.

mod approvals;
mod audit;
mod auth;
mod bad_input;
mod durability;
mod enforce;
mod helpers;
mod limits;
mod reads;
mod reload;
mod replicas;
