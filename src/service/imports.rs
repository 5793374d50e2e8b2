//! Fetching the imports of TOSCA templates (INDIGO templates import their custom
//! types by URL). Imports are fetched at registration with a timeout, transitively,
//! and cached by URL in memory and, with `TOSCA_IMPORT_CACHE`, on disk, so a template
//! once registered can be read again without the network.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{Error, Result};

/// Fetches and caches imports.
pub struct ImportFetcher {
    http: reqwest::Client,
    memory: moka::sync::Cache<String, Arc<String>>,
    dir: Option<PathBuf>,
}

/// Largest import accepted.
const MAX_IMPORT_BYTES: usize = 8 * 1024 * 1024;
/// Most imports one template may pull in.
const MAX_IMPORTS: usize = 64;

fn resolve(base: Option<&str>, reference: &str) -> Option<String> {
    if let Ok(url) = url::Url::parse(reference) {
        return matches!(url.scheme(), "http" | "https")
            .then(|| url.to_string())
            .map(|_| reference.to_string());
    }
    let base = url::Url::parse(base?).ok()?;
    base.join(reference).ok().map(|u| u.to_string())
}

impl ImportFetcher {
    /// A fetcher with this timeout and optional cache directory.
    pub fn new(timeout: Duration, dir: Option<PathBuf>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
            memory: moka::sync::Cache::builder().max_capacity(1_000).build(),
            dir,
        }
    }

    fn disk_path(&self, url: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| {
            d.join(format!(
                "{}.yaml",
                hex::encode(Sha256::digest(url.as_bytes()))
            ))
        })
    }

    async fn fetch(&self, url: &str) -> Result<Arc<String>> {
        if let Some(text) = self.memory.get(url) {
            return Ok(text);
        }
        if let Some(path) = self.disk_path(url) {
            if let Ok(text) = tokio::fs::read_to_string(&path).await {
                let text = Arc::new(text);
                self.memory.insert(url.to_string(), text.clone());
                return Ok(text);
            }
        }
        let fail = |why: String| {
            Error::invalid(
                "/content",
                format!("import '{url}' cannot be fetched: {why}"),
            )
        };
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status())));
        }
        let bytes = response.bytes().await.map_err(|e| fail(e.to_string()))?;
        if bytes.len() > MAX_IMPORT_BYTES {
            return Err(fail(format!("larger than {MAX_IMPORT_BYTES} bytes")));
        }
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| fail("not UTF-8 text".into()))?;
        if let Some(path) = self.disk_path(url) {
            if let Some(dir) = path.parent() {
                let _ = tokio::fs::create_dir_all(dir).await;
            }
            if let Err(e) = tokio::fs::write(&path, &text).await {
                tracing::warn!(import.url = url, error = %e, "cannot write the TOSCA import cache");
            }
        }
        let text = Arc::new(text);
        self.memory.insert(url.to_string(), text.clone());
        Ok(text)
    }

    /// Every import of `src`, transitively, by URL as written in the importing file.
    /// An import that cannot be fetched is a 422 naming its URL.
    pub async fn collect(&self, src: &str) -> Result<HashMap<String, String>> {
        let mut out: HashMap<String, String> = HashMap::new();
        let mut queue: Vec<(Option<String>, String)> = vec![(None, src.to_string())];
        while let Some((base, text)) = queue.pop() {
            let imports =
                tosca::imports_of(&text).map_err(|e| super::templates::tosca_error(&e))?;
            for import in imports {
                if out.contains_key(&import.url) {
                    continue;
                }
                if out.len() >= MAX_IMPORTS {
                    return Err(Error::invalid(
                        "/content",
                        format!("the template pulls in more than {MAX_IMPORTS} imports"),
                    ));
                }
                let url = resolve(base.as_deref(), &import.url).ok_or_else(|| {
                    Error::invalid(
                        "/content",
                        format!(
                            "import '{}' is not an http(s) URL and cannot be fetched",
                            import.url
                        ),
                    )
                })?;
                let fetched = self.fetch(&url).await?;
                out.insert(import.url.clone(), fetched.to_string());
                queue.push((Some(url), fetched.to_string()));
            }
        }
        Ok(out)
    }
}
