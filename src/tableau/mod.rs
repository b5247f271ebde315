//! The Tableau integration: its protocol client, its extraction, and how its rows are stored.
//! Everything Tableau-specific lives here, so another BI tool is a sibling module with its own
//! extract (and later refresh), writing the same kind of rows for normalize/match/emit.

pub(crate) mod client;
pub(crate) mod extract;
pub(crate) mod model;
pub(crate) mod store;
