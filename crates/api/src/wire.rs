//! JSON shapes of Docker Model Runner's model API.

use modelrunner_format::config::ModelConfig;
use modelrunner_store::ModelInfo;
use serde::{Deserialize, Serialize};

/// A model as `GET /models` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelJson {
    /// `sha256:...`
    pub id: String,
    /// Fully qualified tags.
    pub tags: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    /// Docker-shaped config.
    pub config: ModelConfig,
}

impl From<&ModelInfo> for ModelJson {
    fn from(m: &ModelInfo) -> Self {
        ModelJson {
            id: m.id.to_string(),
            tags: m.tags.clone(),
            created: m.created,
            config: m.config.clone(),
        }
    }
}
