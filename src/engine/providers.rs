//! Where deployments may go: the providers file (`PROVIDERS_FILE`, DESIGN.md §5),
//! validated at start, and the choice of candidate providers for a deployment.
//!
//! The file is written by hand by operators, so every problem is reported with the
//! provider's name (or position) and the field, and the process does not start.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// How the IM line of the authorization header is built for a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImAuth {
    /// The deployment owner's OIDC access token.
    Token,
    /// Fixed credentials of the orchestrator (the pair is the owner identity in IM).
    Password {
        /// IM user name.
        username: String,
        /// IM password.
        password: Secret,
    },
}

/// One provider of the file.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Name; `target_provider` matches it.
    pub name: String,
    /// IM cloud type (`OpenStack`, `OpenNebula`, `Dummy`, ...).
    pub kind: String,
    /// Lower is tried first.
    pub rank: i64,
    /// Regions; empty means any region.
    pub regions: Vec<String>,
    /// The IM endpoint for this provider.
    pub im_url: String,
    /// How IM authenticates us.
    pub im_auth: ImAuth,
    /// The cloud line, with `{access_token}`, `{region}` and `{project}` placeholders.
    pub cloud_auth: Secret,
    /// Groups allowed to deploy here (`*` = any).
    pub user_groups: Vec<String>,
    /// IaaS project per user group (`*` = default).
    pub projects: BTreeMap<String, String>,
}

/// What the configuration endpoint shows of a provider: no credentials.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    /// Name.
    pub name: String,
    /// IM cloud type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Rank (lower is tried first).
    pub rank: i64,
    /// Regions (empty: any).
    pub regions: Vec<String>,
    /// IM endpoint.
    pub im_url: String,
    /// Groups allowed.
    pub user_groups: Vec<String>,
}

impl Provider {
    /// The public part.
    pub fn view(&self) -> ProviderView {
        ProviderView {
            name: self.name.clone(),
            kind: self.kind.clone(),
            rank: self.rank,
            regions: self.regions.clone(),
            im_url: self.im_url.clone(),
            user_groups: self.user_groups.clone(),
        }
    }

    /// Whether members of `group` may deploy here.
    pub fn allows_group(&self, group: &str) -> bool {
        self.user_groups.iter().any(|g| g == "*" || g == group)
    }

    /// The IaaS project for a group, if any.
    pub fn project_for(&self, group: &str) -> Option<&str> {
        self.projects
            .get(group)
            .or_else(|| self.projects.get("*"))
            .map(String::as_str)
    }

    /// Whether the IM header needs the owner's access token.
    pub fn needs_access_token(&self) -> bool {
        self.im_auth == ImAuth::Token || self.cloud_auth.expose().contains("{access_token}")
    }

    /// The cloud line with its placeholders filled in.
    pub fn cloud_line(
        &self,
        access_token: Option<&str>,
        region: Option<&str>,
        project: Option<&str>,
    ) -> String {
        self.cloud_auth
            .expose()
            .replace("{access_token}", access_token.unwrap_or_default())
            .replace("{region}", region.unwrap_or_default())
            .replace("{project}", project.unwrap_or_default())
    }
}

/// A place to try: a provider and the region chosen there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Provider name.
    pub provider: String,
    /// Region, when the provider has regions.
    pub region: Option<String>,
}

/// What a deployment asks of its placement.
#[derive(Debug, Clone, Default)]
pub struct Placement<'a> {
    /// The deployment's group.
    pub user_group: &'a str,
    /// `target_provider`, when given.
    pub target_provider: Option<&'a str>,
    /// `target_region`, when given.
    pub target_region: Option<&'a str>,
    /// The template's `metadata.target_provider_type`, when given.
    pub provider_type: Option<&'a str>,
    /// `max_providers`, when given.
    pub max_providers: Option<i64>,
}

/// The validated providers file.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    list: Vec<Provider>,
}

/// A problem of the providers file.
#[derive(Debug, thiserror::Error)]
#[error("PROVIDERS_FILE {path}: {message}")]
pub struct ProvidersError {
    /// The file.
    pub path: String,
    /// What is wrong, naming the provider and field.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    providers: Vec<RawProvider>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "default_rank")]
    rank: i64,
    #[serde(default)]
    regions: Vec<String>,
    im_url: String,
    im_auth: RawImAuth,
    cloud_auth: String,
    #[serde(default = "any_group")]
    user_groups: Vec<String>,
    #[serde(default)]
    projects: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawImAuth {
    Mode(String),
    Password { username: String, password: String },
}

fn default_rank() -> i64 {
    100
}

fn any_group() -> Vec<String> {
    vec!["*".to_string()]
}

const PLACEHOLDERS: [&str; 3] = ["access_token", "region", "project"];

impl Providers {
    /// Builds from a list (tests).
    pub fn new(mut list: Vec<Provider>) -> Self {
        list.sort_by(|a, b| a.rank.cmp(&b.rank).then_with(|| a.name.cmp(&b.name)));
        Self { list }
    }

    /// Reads and validates the file.
    pub fn load(path: &Path) -> Result<Self, ProvidersError> {
        let error = |message: String| ProvidersError {
            path: path.display().to_string(),
            message,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| error(format!("cannot read it: {e}")))?;
        Self::parse(&text).map_err(error)
    }

    /// Parses and validates the text of a providers file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc = tosca::yaml::parse(text).map_err(|e| format!("not YAML: {e}"))?;
        let raw: RawFile = serde_path_to_error::deserialize(doc.to_json()).map_err(|e| {
            let at = e.path().to_string();
            let at = name_path(&doc.to_json(), &at);
            format!("{at}: {}", e.inner())
        })?;
        let mut list = Vec::with_capacity(raw.providers.len());
        for (i, p) in raw.providers.into_iter().enumerate() {
            let who = if p.name.trim().is_empty() {
                format!("providers[{i}]")
            } else {
                format!("provider '{}'", p.name)
            };
            let bad = |field: &str, msg: &str| format!("{who}: {field} {msg}");
            if p.name.trim().is_empty() {
                return Err(bad("name", "must not be empty"));
            }
            if list.iter().any(|q: &Provider| q.name == p.name) {
                return Err(bad("name", "is used by another provider"));
            }
            if p.kind.trim().is_empty() {
                return Err(bad("type", "must not be empty"));
            }
            match url::Url::parse(&p.im_url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => return Err(bad("im_url", "must be an http(s) URL")),
            }
            let im_auth = match p.im_auth {
                RawImAuth::Mode(m) if m == "token" => ImAuth::Token,
                RawImAuth::Mode(m) => {
                    return Err(bad(
                        "im_auth",
                        &format!("must be 'token' or {{username, password}}, got '{m}'"),
                    ))
                }
                RawImAuth::Password { username, password } => {
                    if username.is_empty() || password.is_empty() {
                        return Err(bad("im_auth", "needs a non-empty username and password"));
                    }
                    ImAuth::Password {
                        username,
                        password: Secret::new(password),
                    }
                }
            };
            if p.cloud_auth.trim().is_empty() {
                return Err(bad("cloud_auth", "must not be empty"));
            }
            if p.cloud_auth.contains('\n') {
                return Err(bad("cloud_auth", "must be one line"));
            }
            for placeholder in placeholders(&p.cloud_auth) {
                if !PLACEHOLDERS.contains(&placeholder) {
                    return Err(bad(
                        "cloud_auth",
                        &format!("has an unknown placeholder {{{placeholder}}} (known: {{access_token}}, {{region}}, {{project}})"),
                    ));
                }
            }
            if p.user_groups.is_empty() {
                return Err(bad(
                    "user_groups",
                    "must list at least one group (\"*\" for any)",
                ));
            }
            if p.regions.iter().any(|r| r.trim().is_empty()) {
                return Err(bad("regions", "must not contain empty names"));
            }
            list.push(Provider {
                name: p.name,
                kind: p.kind,
                rank: p.rank,
                regions: p.regions,
                im_url: p.im_url.trim_end_matches('/').to_string(),
                im_auth,
                cloud_auth: Secret::new(p.cloud_auth),
                user_groups: p.user_groups,
                projects: p.projects,
            });
        }
        Ok(Self::new(list))
    }

    /// All providers in rank order.
    pub fn all(&self) -> &[Provider] {
        &self.list
    }

    /// A provider by name.
    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.list.iter().find(|p| p.name == name)
    }

    /// The providers a deployment may try, in rank order, at most `max_providers`;
    /// or, when none, why each provider was excluded.
    pub fn candidates(&self, want: &Placement<'_>) -> Result<Vec<Candidate>, String> {
        let mut found = Vec::new();
        let mut excluded = Vec::new();
        for p in &self.list {
            let why = if !p.allows_group(want.user_group) {
                Some(format!("group '{}' may not deploy there", want.user_group))
            } else if want.target_provider.is_some_and(|t| t != p.name) {
                Some("not the requested target_provider".to_string())
            } else if want
                .provider_type
                .is_some_and(|t| !t.eq_ignore_ascii_case(&p.kind))
            {
                Some(format!(
                    "its type {} is not the template's target_provider_type {}",
                    p.kind,
                    want.provider_type.unwrap_or_default()
                ))
            } else if want
                .target_region
                .is_some_and(|r| !p.regions.is_empty() && !p.regions.iter().any(|x| x == r))
            {
                Some(format!(
                    "it has no region '{}'",
                    want.target_region.unwrap_or_default()
                ))
            } else if p.cloud_auth.expose().contains("{project}")
                && p.project_for(want.user_group).is_none()
            {
                Some(format!(
                    "it has no IaaS project for group '{}'",
                    want.user_group
                ))
            } else {
                None
            };
            match why {
                Some(why) => excluded.push(format!("{}: {why}", p.name)),
                None => found.push(Candidate {
                    provider: p.name.clone(),
                    region: want
                        .target_region
                        .map(String::from)
                        .or_else(|| p.regions.first().cloned()),
                }),
            }
        }
        if let Some(max) = want.max_providers {
            found.truncate(usize::try_from(max.max(1)).unwrap_or(usize::MAX));
        }
        if found.is_empty() {
            return Err(if self.list.is_empty() {
                "no provider is configured (PROVIDERS_FILE)".to_string()
            } else {
                format!(
                    "no provider accepts this deployment: {}",
                    excluded.join("; ")
                )
            });
        }
        Ok(found)
    }
}

/// `{name}` placeholders of a cloud line.
fn placeholders(text: &str) -> Vec<&str> {
    text.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}

/// Turns `providers[1].im_url` into `provider 'name': im_url` when the name is known.
fn name_path(doc: &serde_json::Value, path: &str) -> String {
    let Some(rest) = path.strip_prefix("providers[") else {
        return path.to_string();
    };
    let Some((index, field)) = rest.split_once(']') else {
        return path.to_string();
    };
    let name = index
        .parse::<usize>()
        .ok()
        .and_then(|i| doc["providers"][i]["name"].as_str());
    match name {
        Some(name) => format!("provider '{name}'{}", field.replacen('.', ": ", 1)),
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
providers:
  - name: backbone
    type: OpenStack
    rank: 2
    regions: [cnaf, bari]
    im_url: https://im.example.org:8800
    im_auth: token
    cloud_auth: "id = ost; type = OpenStack; host = https://keystone:5000; password = {access_token}; service_region = {region}; domain = {project}"
    user_groups: ["*"]
    projects: {beta-testers: test-project, "*": default-project}
  - name: dummy
    type: Dummy
    rank: 1
    im_url: http://127.0.0.1:8800/
    im_auth: {username: orchestrator, password: changeit}
    cloud_auth: "id = dummy; type = Dummy"
    user_groups: [beta-testers]
"#;

    fn place(group: &str) -> Placement<'_> {
        Placement {
            user_group: group,
            ..Default::default()
        }
    }

    #[test]
    fn the_design_example_loads_in_rank_order() {
        let p = Providers::parse(FILE).unwrap();
        let names: Vec<_> = p.all().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["dummy", "backbone"]);
        assert_eq!(p.get("dummy").unwrap().im_url, "http://127.0.0.1:8800");
        assert!(p.get("backbone").unwrap().needs_access_token());
        assert!(!p.get("dummy").unwrap().needs_access_token());
    }

    #[test]
    fn candidates_follow_group_target_type_and_max() {
        let p = Providers::parse(FILE).unwrap();
        let c = p.candidates(&place("beta-testers")).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].provider, "dummy");
        assert_eq!(c[1].region.as_deref(), Some("cnaf"));
        let c = p.candidates(&place("users")).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].provider, "backbone");
        let c = p
            .candidates(&Placement {
                max_providers: Some(1),
                ..place("beta-testers")
            })
            .unwrap();
        assert_eq!(c.len(), 1);
        let c = p
            .candidates(&Placement {
                target_region: Some("bari"),
                provider_type: Some("openstack"),
                ..place("beta-testers")
            })
            .unwrap();
        assert_eq!(
            c,
            vec![Candidate {
                provider: "backbone".into(),
                region: Some("bari".into())
            }]
        );
        let err = p
            .candidates(&Placement {
                target_provider: Some("dummy"),
                ..place("users")
            })
            .unwrap_err();
        assert!(
            err.contains("dummy: group 'users' may not deploy there"),
            "{err}"
        );
        assert!(
            err.contains("backbone: not the requested target_provider"),
            "{err}"
        );
    }

    #[test]
    fn cloud_lines_are_filled_in() {
        let p = Providers::parse(FILE).unwrap();
        let b = p.get("backbone").unwrap();
        let line = b.cloud_line(Some("AT"), Some("cnaf"), b.project_for("users"));
        assert!(line.contains("password = AT; service_region = cnaf; domain = default-project"));
    }

    #[test]
    fn mistakes_name_the_provider_and_field() {
        let cases = [
            (
                FILE.replace("https://im.example.org:8800", "ftp://x"),
                "provider 'backbone': im_url must be an http(s) URL",
            ),
            (
                FILE.replace("im_auth: token", "im_auth: tokens"),
                "provider 'backbone': im_auth must be 'token'",
            ),
            (
                FILE.replace("{region}", "{zone}"),
                "unknown placeholder {zone}",
            ),
            (
                FILE.replace("name: dummy", "name: backbone"),
                "provider 'backbone': name is used by another provider",
            ),
            (
                FILE.replace("    rank: 1\n", "    rank: first\n"),
                "provider 'dummy': rank",
            ),
            (
                FILE.replace("    type: Dummy\n", ""),
                "missing field `type`",
            ),
            (
                FILE.replace("user_groups: [beta-testers]", "user_groups: []"),
                "provider 'dummy': user_groups must list",
            ),
            ("providers: [{".to_string(), "not YAML"),
        ];
        for (text, expected) in cases {
            let err = Providers::parse(&text).unwrap_err();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[test]
    fn no_provider_explains_itself() {
        let err = Providers::default().candidates(&place("x")).unwrap_err();
        assert!(err.contains("no provider is configured"));
    }
}
