//! The wiring: which integrations exist, chosen from the config. The generic stages know the
//! integrations only through the seams (for refresh, `crate::refresh::seam`); this file says
//! which implementation each configured integration gets.

use crate::config::Config;
use crate::http::HttpMode;
use crate::refresh::seam::{RefreshTexts, Refresher, Refreshers};
use crate::tableau;

// refresh

/// The configured integrations, as the refresh stage reaches them.
pub(crate) struct ConfiguredRefreshers<'a> {
    pub(crate) config: &'a Config,
    pub(crate) mode: &'a HttpMode,
}

impl Refreshers for ConfiguredRefreshers<'_> {
    fn texts(&self, integration: &str) -> &'static RefreshTexts {
        if self.config.tableau.iter().any(|s| s.name == integration) {
            &tableau::refresh::TEXTS
        } else {
            &RefreshTexts::NEUTRAL
        }
    }

    fn open(&self, integration: &str) -> Result<Box<dyn Refresher>, String> {
        match self.config.tableau.iter().find(|s| s.name == integration) {
            Some(site) => tableau::refresh::open(site, self.mode),
            None => Err(format!("integration {integration:?} is not in the config any more")),
        }
    }
}
