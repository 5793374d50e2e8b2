//! Binding IM's VMs to the deployment's resources (DESIGN.md §4): the VM info's
//! `system` entry names the TOSCA node (`id`), and the instances of a node are bound
//! in VM id order. VMs IM added (a scale-up) become new resources; resources whose
//! VM is gone (a scale-down) become DELETED.

use std::collections::BTreeMap;

use im_client::{AuthHeader, Im, ImError, InfraId, VmInfo};
use serde_json::json;
use uuid::Uuid;

use crate::domain::{Resource, ResourceStatus, Timestamp};

/// Every VM of an infrastructure with its info.
pub(super) async fn read_vms(
    im: &dyn Im,
    auth: &AuthHeader,
    id: &InfraId,
) -> Result<Vec<VmInfo>, ImError> {
    let mut ids = im.vm_ids(auth, id).await?;
    ids.sort_by_key(|v| (v.parse::<u64>().unwrap_or(u64::MAX), v.clone()));
    let mut vms = Vec::with_capacity(ids.len());
    for vm in ids {
        vms.push(im.vm_info(auth, id, &vm).await?);
    }
    Ok(vms)
}

/// What binding changes: resources to update and resources to insert.
#[derive(Debug, Default)]
pub(super) struct Binding {
    pub updated: Vec<Resource>,
    pub inserted: Vec<Resource>,
}

/// Binds `vms` to `resources`. Resources of nodes without VMs (software components)
/// take `others`.
pub(super) fn bind(
    resources: &[Resource],
    vms: &[VmInfo],
    others: ResourceStatus,
    by: Uuid,
) -> Binding {
    let now = Timestamp::now();
    let mut by_node: BTreeMap<&str, Vec<&VmInfo>> = BTreeMap::new();
    for vm in vms {
        if let Some(node) = vm.node_name.as_deref() {
            by_node.entry(node).or_default().push(vm);
        }
    }
    let mut binding = Binding::default();
    let mut nodes: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    for r in resources {
        nodes.entry(r.tosca_node_name.as_str()).or_default().push(r);
    }
    for (node, mut rs) in nodes {
        rs.sort_by_key(|r| r.instance_index);
        let node_vms = by_node.remove(node).unwrap_or_default();
        if node_vms.is_empty() && rs.iter().all(|r| r.im_vm_idx.is_none()) {
            for r in rs {
                if r.status != ResourceStatus::Deleted && r.status != others {
                    let mut r = r.clone();
                    r.status = others;
                    r.status_reason = None;
                    r.updated_at = now;
                    r.updated_by = by;
                    binding.updated.push(r);
                }
            }
            continue;
        }
        // Resources already bound keep their VM; the rest take the unbound VMs in order.
        let mut free: Vec<&VmInfo> = node_vms
            .iter()
            .copied()
            .filter(|vm| {
                !rs.iter()
                    .any(|r| r.im_vm_idx.as_deref() == Some(vm.vm_id.as_str()))
            })
            .collect();
        free.reverse();
        let live: Vec<&Resource> = rs
            .iter()
            .copied()
            .filter(|r| r.status != ResourceStatus::Deleted)
            .collect();
        for r in &live {
            let vm = match r.im_vm_idx.as_deref() {
                Some(idx) => node_vms.iter().copied().find(|vm| vm.vm_id == idx),
                None => free.pop(),
            };
            let mut r = (*r).clone();
            match vm {
                Some(vm) => apply(&mut r, vm),
                None => {
                    r.status = ResourceStatus::Deleted;
                    r.status_reason = Some("IM no longer has this virtual machine".into());
                }
            }
            r.updated_at = now;
            r.updated_by = by;
            binding.updated.push(r);
        }
        let template = rs[0];
        let mut next = rs.iter().map(|r| r.instance_index).max().unwrap_or(-1) + 1;
        while let Some(vm) = free.pop() {
            let mut r = new_like(template, next, now, by);
            apply(&mut r, vm);
            binding.inserted.push(r);
            next += 1;
        }
    }
    binding
}

fn apply(r: &mut Resource, vm: &VmInfo) {
    r.im_vm_idx = Some(vm.vm_id.clone());
    r.status = ResourceStatus::from_im_state(vm.state.as_str());
    r.status_reason = None;
    r.metadata = Some(json!({"VirtualMachineInfo": {"vmProperties": vm.properties}}));
}

fn new_like(template: &Resource, index: i64, now: Timestamp, by: Uuid) -> Resource {
    Resource {
        id: Uuid::new_v4(),
        deployment_id: template.deployment_id,
        tosca_node_name: template.tosca_node_name.clone(),
        tosca_node_type: template.tosca_node_type.clone(),
        instance_index: index,
        im_vm_idx: None,
        status: ResourceStatus::Initial,
        status_reason: None,
        metadata: None,
        required_by: template.required_by.clone(),
        created_at: now,
        created_by: by,
        updated_at: now,
        updated_by: by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use im_client::InfraState;

    fn resource(node: &str, index: i64) -> Resource {
        let now = Timestamp::now();
        Resource {
            id: Uuid::new_v4(),
            deployment_id: Uuid::nil(),
            tosca_node_name: node.into(),
            tosca_node_type: "tosca.nodes.Compute".into(),
            instance_index: index,
            im_vm_idx: None,
            status: ResourceStatus::Initial,
            status_reason: None,
            metadata: None,
            required_by: vec![],
            created_at: now,
            created_by: Uuid::nil(),
            updated_at: now,
            updated_by: Uuid::nil(),
        }
    }

    fn vm(id: &str, node: &str, state: InfraState) -> VmInfo {
        VmInfo {
            vm_id: id.into(),
            node_name: Some(node.into()),
            state,
            properties: vec![json!({"class": "system", "id": node})],
        }
    }

    #[test]
    fn vms_bind_to_their_nodes_in_order_and_software_nodes_follow() {
        let rs = vec![
            resource("wn", 0),
            resource("wn", 1),
            resource("front", 0),
            resource("app", 0),
        ];
        let vms = vec![
            vm("0", "front", InfraState::Configured),
            vm("1", "wn", InfraState::Configured),
            vm("2", "wn", InfraState::Running),
        ];
        let b = bind(&rs, &vms, ResourceStatus::Configured, Uuid::nil());
        assert!(b.inserted.is_empty());
        let find = |node: &str, i: i64| {
            b.updated
                .iter()
                .find(|r| r.tosca_node_name == node && r.instance_index == i)
                .unwrap()
        };
        assert_eq!(find("wn", 0).im_vm_idx.as_deref(), Some("1"));
        assert_eq!(find("wn", 1).im_vm_idx.as_deref(), Some("2"));
        assert_eq!(find("wn", 1).status, ResourceStatus::Configuring);
        assert_eq!(find("front", 0).status, ResourceStatus::Started);
        assert_eq!(find("app", 0).status, ResourceStatus::Configured);
        assert_eq!(
            find("front", 0).metadata.as_ref().unwrap()["VirtualMachineInfo"]["vmProperties"][0]
                ["id"],
            "front"
        );
    }

    #[test]
    fn scaling_adds_and_deletes_resources() {
        let mut a = resource("wn", 0);
        a.im_vm_idx = Some("1".into());
        let mut b = resource("wn", 1);
        b.im_vm_idx = Some("2".into());
        // VM 2 was removed, VMs 3 and 4 were added.
        let vms = vec![
            vm("1", "wn", InfraState::Configured),
            vm("3", "wn", InfraState::Configured),
            vm("4", "wn", InfraState::Configured),
        ];
        let out = bind(&[a, b], &vms, ResourceStatus::Configured, Uuid::nil());
        let gone = out.updated.iter().find(|r| r.instance_index == 1).unwrap();
        assert_eq!(gone.status, ResourceStatus::Deleted);
        let added: Vec<_> = out
            .inserted
            .iter()
            .map(|r| (r.instance_index, r.im_vm_idx.clone().unwrap()))
            .collect();
        assert_eq!(added, vec![(2, "3".to_string()), (3, "4".to_string())]);
    }
}
