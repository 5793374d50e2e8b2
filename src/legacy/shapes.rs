//! The legacy JSON shapes (legacy-api.md §1): `DeploymentResource`, `BaseResource`
//! and the Spring HATEOAS page, built from the v1 domain types. camelCase names,
//! null fields omitted (the dashboard crashes on `statusReason: null`), dates as
//! `yyyy-MM-dd'T'HH:mmZ` in UTC, statuses, tasks and states as names, `updateTime`
//! always present, absolute `links` arrays.

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::config::Config;
use crate::domain::{Deployment, Resource, ResourceStatus, Task, Timestamp, User};
use crate::http::extract::RequestUrl;

/// `2024-03-01T09:56+0000`: minute precision, UTC.
pub fn date(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%dT%H:%M+0000").to_string()
}

/// The legacy task of a v1 task: only `NONE` and `DEPLOYER` were ever set; a
/// deployment waiting for a provider (submitted, provider selection) is `NONE`, as
/// the legacy create answered.
pub fn task_name(task: Task) -> &'static str {
    match task {
        Task::None | Task::Submitted | Task::ProviderSelection => "NONE",
        _ => "DEPLOYER",
    }
}

/// Where the legacy API is, for absolute links: the public base URL (`BASE_URL`, or
/// the request's `X-Forwarded-Proto/Host/Prefix` and `Host`) and `LEGACY_PREFIX`.
#[derive(Debug, Clone)]
pub struct Root(pub String);

impl Root {
    /// From a request.
    pub fn of(url: &RequestUrl, config: &Config) -> Self {
        Self(format!("{}{}", url.base, config.legacy.prefix))
    }

    /// Without a request (callbacks): `BASE_URL` or the listening address.
    pub fn configured(config: &Config) -> Self {
        let base = config
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.listen_addr));
        Self(format!("{base}{}", config.legacy.prefix))
    }

    /// A deployment's URL.
    pub fn deployment(&self, id: Uuid) -> String {
        format!("{}/deployments/{id}", self.0)
    }

    /// An absolute URL for a path under the legacy prefix.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

/// `{"rel", "href"}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Link {
    /// Relation.
    pub rel: String,
    /// Absolute URL.
    pub href: String,
}

impl Link {
    fn new(rel: &str, href: String) -> Self {
        Self {
            rel: rel.to_string(),
            href,
        }
    }
}

/// `createdBy`.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedBy {
    /// The creator's issuer.
    pub issuer: String,
    /// The creator's subject.
    pub subject: String,
}

/// `cloudProviderEndpoint` (serialized NON_EMPTY by the legacy server).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudProviderEndpoint {
    /// The cloud's endpoint (the `host` of the provider's cloud line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cp_endpoint: Option<String>,
    /// Region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The compute service: the provider's name.
    pub cp_compute_service_id: String,
    /// The IaaS kind, as legacy's deployment type.
    pub deployment_type: String,
    /// The same, under the name the dashboard reads.
    pub iaas_type: String,
}

/// `DeploymentResource`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentResource {
    /// Id.
    pub uuid: Uuid,
    /// Creation.
    pub creation_time: String,
    /// Last change (always present: the dashboard indexes it).
    pub update_time: String,
    /// The IM infrastructure id, once there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical_id: Option<String>,
    /// Status name.
    pub status: &'static str,
    /// Why, when there is a reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Outputs (`{}` until complete).
    pub outputs: Map<String, Value>,
    /// `NONE` or `DEPLOYER`.
    pub task: &'static str,
    /// The callback URL given at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    /// The user group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_group: Option<String>,
    /// The provider chosen (or asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_provider_name: Option<String>,
    /// Where it is deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_provider_endpoint: Option<CloudProviderEndpoint>,
    /// The creator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<CreatedBy>,
    /// self, resources, template.
    pub links: Vec<Link>,
}

/// The legacy name of an IM cloud type (`deploymentType`/`iaasType`).
pub fn iaas_type(kind: &str) -> String {
    match kind.to_ascii_lowercase().as_str() {
        "openstack" => "OPENSTACK".into(),
        "opennebula" => "OPENNEBULA".into(),
        "ec2" | "aws" => "AWS".into(),
        "azure" | "azureclassic" => "AZURE".into(),
        "otc" => "OTC".into(),
        "occi" => "OCCI".into(),
        "kubernetes" => "KUBERNETES".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// The `host` of a cloud auth line (`id = x; type = OpenStack; host = https://...`);
/// nothing else of the line (which holds credentials) is read.
fn cloud_host(line: &str) -> Option<String> {
    line.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == "host").then(|| v.trim().trim_matches(['"', '\'']).to_string())
    })
}

impl DeploymentResource {
    /// The legacy shape of a deployment; `creator` is its creator's user record.
    pub fn build(d: Deployment, creator: Option<&User>, config: &Config, root: &Root) -> Self {
        let endpoint = d.target_provider.as_deref().and_then(|name| {
            let p = config.engine.providers.get(name)?;
            Some(CloudProviderEndpoint {
                cp_endpoint: cloud_host(p.cloud_auth.expose()),
                region: d.target_region.clone(),
                cp_compute_service_id: p.name.clone(),
                deployment_type: iaas_type(&p.kind),
                iaas_type: iaas_type(&p.kind),
            })
        });
        let me = root.deployment(d.id);
        Self {
            uuid: d.id,
            creation_time: date(d.created_at),
            update_time: date(d.updated_at.max(d.created_at)),
            physical_id: d.im_infra_id.filter(|s| !s.is_empty()),
            status: d.status.name(),
            status_reason: d.status_reason.filter(|s| !s.is_empty()),
            outputs: d.template_outputs,
            task: task_name(d.task),
            callback: d.callback,
            user_group: Some(d.user_group).filter(|g| !g.is_empty()),
            cloud_provider_name: d.target_provider,
            cloud_provider_endpoint: endpoint,
            created_by: creator.map(|u| CreatedBy {
                issuer: u.issuer.clone(),
                subject: u.sub.clone(),
            }),
            links: vec![
                Link::new("self", me.clone()),
                Link::new("resources", format!("{me}/resources")),
                Link::new("template", format!("{me}/template")),
            ],
        }
    }
}

/// `BaseResource`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseResource {
    /// Id.
    pub uuid: Uuid,
    /// Creation.
    pub creation_time: String,
    /// Last change.
    pub update_time: String,
    /// The IM VM id (compute nodes, once bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical_id: Option<String>,
    /// State name.
    pub state: &'static str,
    /// TOSCA type.
    pub tosca_node_type: String,
    /// TOSCA node name.
    pub tosca_node_name: String,
    /// Always `[]`, as the legacy assembler left it.
    pub required_by: Vec<String>,
    /// `{"VirtualMachineInfo": "<JSON text>"}` or `{}`.
    pub metadata: Map<String, Value>,
    /// deployment, self.
    pub links: Vec<Link>,
}

/// The legacy state name of a v1 resource status (the names are the legacy
/// NodeStates, plus v1's DELETED).
pub fn state_name(status: ResourceStatus) -> &'static str {
    status.name()
}

impl BaseResource {
    /// The legacy shape of a resource.
    pub fn build(r: Resource, root: &Root) -> Self {
        let mut metadata = Map::new();
        if let Some(info) = r
            .metadata
            .as_ref()
            .and_then(|m| m.get("VirtualMachineInfo"))
            .filter(|v| !v.is_null())
        {
            // A Map<String,String> in the legacy server: the VM info is JSON text.
            let text = match info {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            metadata.insert("VirtualMachineInfo".into(), Value::String(text));
        }
        let deployment = root.deployment(r.deployment_id);
        Self {
            uuid: r.id,
            creation_time: date(r.created_at),
            update_time: date(r.updated_at.max(r.created_at)),
            physical_id: r.im_vm_idx,
            state: state_name(r.status),
            tosca_node_type: r.tosca_node_type,
            tosca_node_name: r.tosca_node_name,
            required_by: Vec::new(),
            metadata,
            links: vec![
                Link::new("deployment", deployment.clone()),
                Link::new("self", format!("{deployment}/resources/{}", r.id)),
            ],
        }
    }
}

/// `page` of the paging envelope.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageMetadata {
    /// Page size.
    pub size: u32,
    /// Items over all pages.
    pub total_elements: u64,
    /// Pages.
    pub total_pages: u64,
    /// 0-based page number.
    pub number: u32,
}

/// A Spring HATEOAS page: `links`, `content`, `page`.
#[derive(Debug, Clone, Serialize)]
pub struct Paged<T> {
    /// first, prev, self, next, last.
    pub links: Vec<Link>,
    /// The items (`[]` when none).
    pub content: Vec<T>,
    /// Where this page is.
    pub page: PageMetadata,
}

/// A page request: 0-based `page`, `size`, and the other parameters to keep in links.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// 0-based.
    pub page: u32,
    /// Items per page.
    pub size: u32,
    /// `sort` as sent (kept in links), if any.
    pub sort: Option<String>,
    /// Every other parameter, in the order sent (filters).
    pub kept: Vec<(String, String)>,
}

impl<T> Paged<T> {
    /// The envelope of one page; `href` is the collection's absolute URL. `first`
    /// and `last` are always given (orchent stops when `self` equals `last`),
    /// `prev` and `next` when they exist.
    pub fn new(content: Vec<T>, total: u64, request: &PageRequest, href: &str) -> Self {
        let size = u64::from(request.size.max(1));
        let total_pages = total.div_ceil(size);
        let link = |page: u64| {
            let mut pairs = request.kept.clone();
            pairs.push(("page".into(), page.to_string()));
            pairs.push(("size".into(), request.size.to_string()));
            if let Some(sort) = &request.sort {
                pairs.push(("sort".into(), sort.clone()));
            }
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            format!("{href}?{query}")
        };
        let number = u64::from(request.page);
        let last = total_pages.saturating_sub(1);
        let mut links = vec![Link::new("first", link(0))];
        if number > 0 {
            links.push(Link::new("prev", link((number - 1).min(last))));
        }
        links.push(Link::new("self", link(number)));
        if number < last {
            links.push(Link::new("next", link(number + 1)));
        }
        links.push(Link::new("last", link(last)));
        Self {
            links,
            content,
            page: PageMetadata {
                size: request.size,
                total_elements: total,
                total_pages,
                number: request.page,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_have_minute_precision_and_a_utc_offset() {
        let t = Timestamp::parse("2024-03-01T09:56:41.123456Z").unwrap();
        assert_eq!(date(t), "2024-03-01T09:56+0000");
    }

    #[test]
    fn page_links_keep_the_filters_and_stop_at_the_ends() {
        let request = PageRequest {
            page: 1,
            size: 2,
            sort: Some("createdAt,desc".into()),
            kept: vec![(
                "excludedStatus".into(),
                "DELETE_COMPLETE,DELETE_FAILED".into(),
            )],
        };
        let page: Paged<u8> = Paged::new(vec![], 5, &request, "https://h/orchestrator/deployments");
        let rels: Vec<&str> = page.links.iter().map(|l| l.rel.as_str()).collect();
        assert_eq!(rels, ["first", "prev", "self", "next", "last"]);
        assert_eq!(
            page.links[3].href,
            "https://h/orchestrator/deployments?excludedStatus=DELETE_COMPLETE%2CDELETE_FAILED&page=2&size=2&sort=createdAt%2Cdesc"
        );
        assert_eq!(page.page.total_pages, 3);
        let last = Paged::<u8>::new(vec![], 5, &PageRequest { page: 2, ..request }, "h");
        assert_eq!(
            last.links.iter().find(|l| l.rel == "self").unwrap().href,
            last.links.last().unwrap().href
        );
        assert!(last.links.iter().all(|l| l.rel != "next"));
    }

    #[test]
    fn cloud_types_get_their_legacy_names() {
        assert_eq!(iaas_type("OpenStack"), "OPENSTACK");
        assert_eq!(iaas_type("EC2"), "AWS");
        assert_eq!(
            cloud_host("id = ost; type = OpenStack; host = https://keystone:5000; password = {access_token}").as_deref(),
            Some("https://keystone:5000")
        );
    }
}
