//! husk: a runc-compatible OCI container runtime.
//!
//! `src/main.rs` only calls [`dispatch::main`]; everything lives here so that
//! tests reach it. See ARCHITECTURE.md for the process model.
//!
//! A module is `pub` only when tests/*.rs (or a binary) use it; the rest
//! are `pub(crate)`, so that the compiler reports what nothing uses.
pub mod bundle;
pub(crate) mod capabilities;
pub mod cgroups;
pub mod cli;
pub mod commands;
pub(crate) mod container;
pub(crate) mod criu;
pub mod dbus;
pub mod dispatch; // src/main.rs calls dispatch::main
pub(crate) mod fds;
pub mod fields;
pub(crate) mod hooks;
pub(crate) mod idmap;
pub(crate) mod logging;
pub(crate) mod lookup;
pub(crate) mod lsm;
pub mod mount_options;
pub(crate) mod namespaces;
pub(crate) mod netdev;
pub(crate) mod netlink;
pub(crate) mod output;
pub mod plan; // tests/plan.rs: golden plans
pub mod process; // tests/cgroups.rs: process::clone_child (clone3 into a cgroup)
pub(crate) mod process_attrs;
pub(crate) mod rootfs;
pub mod seccomp;
pub mod state;
pub(crate) mod sys;
pub mod systemd;
pub mod tty;
