//! Tame: a policy decision server for AI agents.
//!
//! An agent asks before it runs a tool; a decision flows through
//!
//! 1. `http::auth`: key or JWT -> a typed principal with a role, then its
//!    token bucket is charged;
//! 2. `http::enforce`: the request validated into a `policy::Request`;
//! 3. `session`: the session held while its counts are read and advanced, so
//!    concurrent decisions see distinct, exact counts;
//! 4. `policy`: the live compiled policy (`reload`) decides (request + session
//!    + clock); an `approve` opens an approval (`approvals`);
//! 5. `audit`: the decision queued to the group-commit writer, HMAC-chained
//!    into the log together with the session's row (`store`);
//! 6. the answer goes back only once the record is committed.

pub mod app;
pub mod approvals;
pub mod audit;
pub mod cli;
pub mod config;
pub mod http;
pub mod policy;
pub mod reload;
pub mod retention;
pub mod session;
pub mod store;
pub mod timefmt;
pub mod tls;
pub mod watch;
pub mod webhook;
