//! The decision server over HTTP, as agents and operators use it: each test
//! starts the real server on port 0 with a fresh SQLite file.

mod enforce;
mod helpers;
