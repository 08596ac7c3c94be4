//! The scenario format ([`model`]) and its loader ([`load`]), which reports every problem as
//! `file:line`. The format is documented for users in `scenarios/README.md`.

pub mod action;
pub mod load;
pub mod model;

pub use action::{Action, Verb};
pub use load::{load_dir, load_str, load_with, LoadError, Loaded};
pub use model::*;
