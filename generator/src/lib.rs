//! tabula's systemd generator: mount units for persisted paths and overlays.
pub mod escape;
