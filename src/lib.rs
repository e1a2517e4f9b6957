//! Tame: a policy decision server for AI agents.
//!
//! An agent asks before it runs a tool; a decision flows through
//!
//! 1. `http::auth`: key or JWT -> a typed principal with a role;
//! 2. `http::limits`: a token bucket per principal;
//! 3. `http::enforce`: the request validated into a `policy::Request`;
//! 4. `session`: the session's next action reserved, counters advanced atomically;
//! 5. `policy`: the live compiled policy decides (request + session + clock);
//! 6. `audit`: the decision recorded, HMAC-chained, group-committed;
//! 7. the answer goes back only once the record is durable.

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
