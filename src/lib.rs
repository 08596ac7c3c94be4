//! Root package of the workspace. It holds no product code: its `tests/` run the scenario specs and the
//! cross-crate properties (see ARCHITECTURE.md).
