//! husk: a runc-compatible OCI container runtime.
pub mod cli;
