//! The scenario harness. This crate is a placeholder until the harness-core issue lands: it runs scenario
//! specs against the platform through its public surfaces only (see DESIGN.md, "Modes").
