//! husk: a runc-compatible OCI container runtime.
//!
//! `src/main.rs` only calls [`cli::main`]; everything lives here so that
//! tests reach it. See ARCHITECTURE.md for the process model.
pub mod bundle;
pub mod capabilities;
pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod criu;
pub mod dbus;
pub mod fds;
pub mod fields;
pub mod hooks;
pub mod idmap;
pub mod logging;
pub mod lsm;
pub mod mount_options;
pub mod namespaces;
pub mod netdev;
pub mod netlink;
pub mod plan;
pub mod process;
pub mod process_attrs;
pub mod rootfs;
pub mod seccomp;
pub mod state;
pub mod sys;
pub mod systemd;
pub mod tty;
