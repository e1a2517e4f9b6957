//! The policy engine as its users meet it: policy files loaded, requests
//! decided, `tame check` and `tame test` run as commands.

mod cli;
mod differential;
mod errors;
mod fail_closed;
mod helpers;
mod hostile;
mod seed;
