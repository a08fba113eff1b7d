//! One module per subcommand (create and start are container operations,
//! in [`crate::container`]). A command never calls another: what two of
//! them share lives in the container layer.

pub mod cgroup_cmds;
pub mod check;
pub mod checkpoint;
pub mod delete;
pub mod docs;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod plan;
pub mod run;
pub mod spec;
pub mod state;
