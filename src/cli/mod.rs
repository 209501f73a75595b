//! The `hutong` binary's command line, split by concern: `args` (what is accepted),
//! `manage` (where a management command runs), `commands` (the command groups), `output`
//! (human text of the typed responses), `serve` (serve, init, simulator), `check` (`config
//! check`), `logging` (the process log), `manual` (man pages and shell completions for the
//! packages). Only the binary
//! uses `anyhow`; the library's errors are typed.

pub mod args;
pub mod backup;
pub mod check;
pub mod commands;
pub mod logging;
pub mod manage;
pub mod manual;
pub mod output;
pub mod serve;
