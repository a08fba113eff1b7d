//! husk: a runc-compatible OCI container runtime.
pub mod cgroups;
pub mod cli;
