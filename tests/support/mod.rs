//! Test support shared by the integration tests.
pub mod powerbi_server;
pub mod tableau_server;
pub mod webdriver;
