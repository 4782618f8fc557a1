//! What `berth doctor` reads besides discovery's snapshot: the execution role's policy
//! documents, whether each task definition's image is in its ECR repository, the secrets'
//! parameters (type and KMS key), the services' deployments and stopped tasks. Read-only:
//! Describe/Get/List calls.

use std::collections::BTreeMap;

use aws_sdk_ecs::types as ecs;
use berth_spec::Stack;

use crate::clients::Clients;
use crate::discover::{Snapshot, canonical_policy};
use crate::doctor::{Facts, ParameterFact, ServiceFact};
use crate::error::{self, Result};
use crate::resource::Value;

pub(crate) async fn gather(c: &Clients, stack: &Stack, snapshot: Snapshot) -> Result<Facts> {
    let execution_policies = if snapshot.get("role/execution").is_some() {
        role_policies(c, &stack.iam.execution_role.name).await?
    } else {
        Vec::new()
    };
    let mut images = BTreeMap::new();
    for service in &stack.services {
        let Some(Value::Text(image)) = snapshot
            .get(&format!("taskdef/{}", service.name))
            .and_then(|a| a.attrs.get("image"))
        else {
            continue;
        };
        let held = image_held(c, image).await?;
        images.insert(service.name.clone(), (image.clone(), held));
    }
    let parameters = parameters(c, stack).await?;
    let services = services(c, stack).await?;
    Ok(Facts {
        snapshot,
        execution_policies,
        images,
        parameters,
        services,
    })
}

/// Every policy document of role `name`: its attached managed policies' default versions
/// and its inline policies.
async fn role_policies(c: &Clients, name: &str) -> Result<Vec<String>> {
    let mut docs = Vec::new();
    for arn in crate::discover::attached_policies(c, name).await? {
        let policy = c
            .iam
            .get_policy()
            .policy_arn(&arn)
            .send()
            .await
            .map_err(error::call("iam:GetPolicy"))?;
        let Some(version) = policy.policy().and_then(|p| p.default_version_id()) else {
            continue;
        };
        let version = c
            .iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(version)
            .send()
            .await
            .map_err(error::call("iam:GetPolicyVersion"))?;
        if let Some(doc) = version.policy_version().and_then(|v| v.document()) {
            docs.push(canonical_policy(doc));
        }
    }
    let inline = c
        .iam
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(error::call("iam:ListRolePolicies"))?;
    for policy in inline.policy_names() {
        let doc = c
            .iam
            .get_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .map_err(error::call("iam:GetRolePolicy"))?;
        docs.push(canonical_policy(doc.policy_document()));
    }
    Ok(docs)
}

/// `registry/repo:tag` or `registry/repo@digest` → (registry, repository, tag or digest).
pub(crate) fn split_image(image: &str) -> Option<(&str, &str, &str)> {
    let (registry, rest) = image.split_once('/')?;
    if let Some((repo, digest)) = rest.split_once('@') {
        return Some((registry, repo, digest));
    }
    let (repo, tag) = rest.rsplit_once(':')?;
    Some((registry, repo, tag))
}

/// Whether ECR holds `image`; `None` when it is not an image of an ECR registry.
async fn image_held(c: &Clients, image: &str) -> Result<Option<bool>> {
    let Some((registry, repo, reference)) = split_image(image) else {
        return Ok(None);
    };
    if !registry.contains(".dkr.ecr.") {
        return Ok(None);
    }
    let id = if reference.starts_with("sha256:") {
        aws_sdk_ecr::types::ImageIdentifier::builder().image_digest(reference)
    } else {
        aws_sdk_ecr::types::ImageIdentifier::builder().image_tag(reference)
    }
    .build();
    match c
        .ecr
        .describe_images()
        .repository_name(repo)
        .image_ids(id)
        .send()
        .await
    {
        Ok(found) => Ok(Some(!found.image_details().is_empty())),
        Err(e)
            if matches!(
                error::code(&e),
                Some("ImageNotFoundException" | "RepositoryNotFoundException")
            ) =>
        {
            Ok(Some(false))
        }
        Err(e) => Err(error::call("ecr:DescribeImages")(e)),
    }
}

/// Every parameter the services read as a secret: its type and KMS key, or `None`.
async fn parameters(c: &Clients, stack: &Stack) -> Result<BTreeMap<String, Option<ParameterFact>>> {
    let mut names: Vec<String> = stack
        .services
        .iter()
        .flat_map(|s| s.secrets.values().cloned())
        .collect();
    names.sort();
    names.dedup();
    let mut out: BTreeMap<String, Option<ParameterFact>> =
        names.iter().map(|n| (n.clone(), None)).collect();
    // DescribeParameters (which reports the key) takes at most 50 names in a filter.
    for chunk in names.chunks(50) {
        let mut pages = c
            .ssm
            .describe_parameters()
            .parameter_filters(
                aws_sdk_ssm::types::ParameterStringFilter::builder()
                    .key("Name")
                    .option("Equals")
                    .set_values(Some(chunk.to_vec()))
                    .build()
                    .map_err(error::build("a parameter filter"))?,
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(error::call("ssm:DescribeParameters"))?;
            for p in page.parameters() {
                let Some(name) = p.name() else { continue };
                if let Some(slot) = out.get_mut(name) {
                    *slot = Some(ParameterFact {
                        secure: p.r#type()
                            == Some(&aws_sdk_ssm::types::ParameterType::SecureString),
                        key_id: p.key_id().map(str::to_owned),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The services that exist: their deployments (through `ServiceApi`, so the fake can script
/// a stuck one) and their stopped tasks.
async fn services(c: &Clients, stack: &Stack) -> Result<BTreeMap<String, ServiceFact>> {
    let names: Vec<String> = stack
        .services
        .iter()
        .map(|s| s.service_name.clone())
        .collect();
    let mut out = BTreeMap::new();
    if names.is_empty() {
        return Ok(out);
    }
    let found = c.services.describe(&stack.cluster, names).await?;
    for spec in &stack.services {
        let Some(service) = found
            .iter()
            .find(|s| s.service_name() == Some(spec.service_name.as_str()))
            .filter(|s| s.status() == Some("ACTIVE"))
        else {
            continue;
        };
        let strategy = crate::status::strategy_of(service);
        let deployments: Vec<_> = service
            .deployments()
            .iter()
            .map(|d| crate::status::deployment(d, strategy))
            .collect();
        // The stopped tasks one of its deployments started (`startedBy`).
        let stopped: Vec<_> = crate::status::tasks(c, stack, spec, &[ecs::DesiredStatus::Stopped])
            .await?
            .into_iter()
            .filter(|t| deployments.iter().any(|d| d.id == t.deployment_id))
            .collect();
        out.insert(
            spec.name.clone(),
            ServiceFact {
                deployments,
                stopped,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::split_image;

    #[test]
    fn images_split_into_registry_repository_and_reference() {
        assert_eq!(
            split_image("1.dkr.ecr.us-east-1.amazonaws.com/backend-repo:abc1234"),
            Some((
                "1.dkr.ecr.us-east-1.amazonaws.com",
                "backend-repo",
                "abc1234"
            ))
        );
        assert_eq!(
            split_image("1.dkr.ecr.us-east-1.amazonaws.com/team/api@sha256:00ff"),
            Some((
                "1.dkr.ecr.us-east-1.amazonaws.com",
                "team/api",
                "sha256:00ff"
            ))
        );
        assert_eq!(split_image("nginx"), None);
    }
}
