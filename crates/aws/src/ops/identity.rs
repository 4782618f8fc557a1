//! IAM roles, ECR repositories, log groups and SSM parameters: found by name, so every
//! creation is also how an interrupted one is finished (an update converges the rest).

use berth_spec::{ParameterType, ParameterValue};

use super::{Ctx, INLINE_POLICY};
use crate::discover::{attached_policies, canonical_policy};
use crate::error::{self, Error, Result};
use crate::resource::{Actual, Resource, Spec};

pub(super) async fn create(cx: &Ctx<'_>, r: &Resource) -> Result<String> {
    match &r.spec {
        Spec::OidcProvider => {
            let tags = iam_tags(cx, r)?;
            let out =
                cx.c.iam
                    .create_open_id_connect_provider()
                    .url(format!("https://{}", crate::ci::GITHUB_OIDC_HOST))
                    .client_id_list(crate::ci::GITHUB_OIDC_AUDIENCE)
                    .set_thumbprint_list(Some(
                        crate::ci::GITHUB_OIDC_THUMBPRINTS
                            .map(str::to_owned)
                            .to_vec(),
                    ))
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(error::call("iam:CreateOpenIDConnectProvider"))?;
            Ok(out.open_id_connect_provider_arn().unwrap_or("").to_owned())
        }
        Spec::Role {
            trust, description, ..
        } => {
            let tags = iam_tags(cx, r)?;
            let out =
                cx.c.iam
                    .create_role()
                    .role_name(&r.name)
                    .assume_role_policy_document(trust)
                    .description(*description)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(error::call("iam:CreateRole"))?;
            let arn = out.role().map(|r| r.arn().to_owned()).unwrap_or_default();
            converge_role(cx, r).await?;
            Ok(arn)
        }
        Spec::Repository { registry, .. } => {
            let tags = cx
                .tags(&r.id, &r.name)
                .into_iter()
                .map(|(k, v)| aws_sdk_ecr::types::Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(error::build("a tag"))?;
            let out =
                cx.c.ecr
                    .create_repository()
                    .repository_name(&registry.name)
                    .image_scanning_configuration(
                        aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                            .scan_on_push(registry.scan_on_push)
                            .build(),
                    )
                    .image_tag_mutability(mutability(registry.immutable_tags))
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(error::call("ecr:CreateRepository"))?;
            put_lifecycle(cx, r).await?;
            Ok(out
                .repository()
                .and_then(|r| r.repository_arn())
                .unwrap_or("")
                .to_owned())
        }
        Spec::LogGroup { .. } => {
            cx.c.logs
                .create_log_group()
                .log_group_name(&r.name)
                .set_tags(Some(
                    cx.tags(&r.id, &r.name)
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                ))
                .send()
                .await
                .map_err(error::call("logs:CreateLogGroup"))?;
            put_retention(cx, r).await?;
            Ok(r.name.clone())
        }
        Spec::Parameter { .. } => put_parameter(cx, r, false).await,
        _ => Err(Error::Other(format!(
            "identity::create called for {}",
            r.kind
        ))),
    }
}

pub(super) async fn update(cx: &Ctx<'_>, r: &Resource, a: &Actual) -> Result<String> {
    match &r.spec {
        // Only the audience can differ (the URL is the resource's identity).
        Spec::OidcProvider => {
            cx.c.iam
                .add_client_id_to_open_id_connect_provider()
                .open_id_connect_provider_arn(&a.physical)
                .client_id(crate::ci::GITHUB_OIDC_AUDIENCE)
                .send()
                .await
                .map_err(error::call("iam:AddClientIDToOpenIDConnectProvider"))?;
        }
        Spec::Role { trust, .. } => {
            // A CI role's trust names the repository and branch, which the stack may change.
            if a.attrs.get("trust") != r.attrs.get("trust") {
                cx.c.iam
                    .update_assume_role_policy()
                    .role_name(&r.name)
                    .policy_document(trust)
                    .send()
                    .await
                    .map_err(error::call("iam:UpdateAssumeRolePolicy"))?;
            }
            converge_role(cx, r).await?;
        }
        Spec::Repository { registry, .. } => {
            cx.c.ecr
                .put_image_scanning_configuration()
                .repository_name(&registry.name)
                .image_scanning_configuration(
                    aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                        .scan_on_push(registry.scan_on_push)
                        .build(),
                )
                .send()
                .await
                .map_err(error::call("ecr:PutImageScanningConfiguration"))?;
            cx.c.ecr
                .put_image_tag_mutability()
                .repository_name(&registry.name)
                .image_tag_mutability(mutability(registry.immutable_tags))
                .send()
                .await
                .map_err(error::call("ecr:PutImageTagMutability"))?;
            put_lifecycle(cx, r).await?;
        }
        Spec::LogGroup { .. } => put_retention(cx, r).await?,
        Spec::Parameter { .. } => {
            put_parameter(cx, r, true).await?;
        }
        _ => {
            return Err(Error::Other(format!(
                "identity::update called for {}",
                r.kind
            )));
        }
    }
    Ok(a.physical.clone())
}

fn mutability(immutable: bool) -> aws_sdk_ecr::types::ImageTagMutability {
    if immutable {
        aws_sdk_ecr::types::ImageTagMutability::Immutable
    } else {
        aws_sdk_ecr::types::ImageTagMutability::Mutable
    }
}

async fn put_lifecycle(cx: &Ctx<'_>, r: &Resource) -> Result<()> {
    let Spec::Repository {
        registry,
        lifecycle,
    } = &r.spec
    else {
        return Ok(());
    };
    cx.c.ecr
        .put_lifecycle_policy()
        .repository_name(&registry.name)
        .lifecycle_policy_text(lifecycle)
        .send()
        .await
        .map_err(error::call("ecr:PutLifecyclePolicy"))?;
    Ok(())
}

async fn put_retention(cx: &Ctx<'_>, r: &Resource) -> Result<()> {
    let Spec::LogGroup { retention_days } = &r.spec else {
        return Ok(());
    };
    match retention_days {
        Some(days) => {
            cx.c.logs
                .put_retention_policy()
                .log_group_name(&r.name)
                .retention_in_days(i32::try_from(*days).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(error::call("logs:PutRetentionPolicy"))?;
        }
        None => {
            cx.c.logs
                .delete_retention_policy()
                .log_group_name(&r.name)
                .send()
                .await
                .map_err(error::call("logs:DeleteRetentionPolicy"))?;
        }
    }
    Ok(())
}

/// Attaches the wanted managed policies, detaches the others, puts (or removes) the
/// inline policy.
async fn converge_role(cx: &Ctx<'_>, r: &Resource) -> Result<()> {
    let Spec::Role {
        managed, policy, ..
    } = &r.spec
    else {
        return Ok(());
    };
    let iam = &cx.c.iam;
    let attached = attached_policies(cx.c, &r.name).await?;
    for arn in managed.iter().filter(|m| !attached.contains(m)) {
        iam.attach_role_policy()
            .role_name(&r.name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(error::call("iam:AttachRolePolicy"))?;
    }
    for arn in attached.iter().filter(|a| !managed.contains(a)) {
        iam.detach_role_policy()
            .role_name(&r.name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(error::call("iam:DetachRolePolicy"))?;
    }
    let current = match iam
        .get_role_policy()
        .role_name(&r.name)
        .policy_name(INLINE_POLICY)
        .send()
        .await
    {
        Ok(p) => Some(canonical_policy(p.policy_document())),
        Err(e) if error::code(&e) == Some("NoSuchEntity") => None,
        Err(e) => return Err(error::call("iam:GetRolePolicy")(e)),
    };
    match policy {
        Some(doc) if current.as_deref() != Some(doc.as_str()) => {
            iam.put_role_policy()
                .role_name(&r.name)
                .policy_name(INLINE_POLICY)
                .policy_document(doc)
                .send()
                .await
                .map_err(error::call("iam:PutRolePolicy"))?;
        }
        None if current.is_some() => {
            iam.delete_role_policy()
                .role_name(&r.name)
                .policy_name(INLINE_POLICY)
                .send()
                .await
                .map_err(error::call("iam:DeleteRolePolicy"))?;
        }
        _ => {}
    }
    Ok(())
}

/// Deletes the stack's GitHub OIDC provider unless a role that is not this stack's trusts
/// it (another stack's CI roles came to use it): then it is kept, and `down` says so. This
/// stack's own roles are deleted first (they depend on it).
async fn delete_oidc_provider(cx: &Ctx<'_>, a: &Actual) -> Result<()> {
    let mut users = Vec::new();
    let mut pages = cx.c.iam.list_roles().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(error::call("iam:ListRoles"))?;
        for role in page.roles() {
            let trust = role
                .assume_role_policy_document()
                .map(canonical_policy)
                .unwrap_or_default();
            if trust.contains(&a.physical) {
                users.push(role.role_name().to_owned());
            }
        }
    }
    if !users.is_empty() {
        cx.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!(
                "iam oidc provider {} (trusted by {})",
                a.name,
                users.join(", ")
            ));
        return Ok(());
    }
    cx.c.iam
        .delete_open_id_connect_provider()
        .open_id_connect_provider_arn(&a.physical)
        .send()
        .await
        .map_err(error::call("iam:DeleteOpenIDConnectProvider"))?;
    Ok(())
}

/// 32 random alphanumeric characters (the generated database password).
fn generate_password() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(32);
    while out.len() < 32 {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::Other(format!("cannot generate a password: {e}")))?;
        // Rejection sampling keeps every character equally likely.
        for b in bytes {
            if usize::from(b) < 248 && out.len() < 32 {
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

/// Writes a parameter's value: a String rendered from the outputs known now, the database
/// user name, or a generated secret (generated only when the parameter is created: an
/// existing password is never replaced).
async fn put_parameter(cx: &Ctx<'_>, r: &Resource, exists: bool) -> Result<String> {
    let Spec::Parameter { parameter } = &r.spec else {
        return Err(Error::Other(format!("not a parameter: {}", r.id)));
    };
    let value = match &parameter.value {
        ParameterValue::Template { template } => {
            crate::desired::render(cx.stack, &cx.outputs(), template).ok_or_else(|| {
                Error::Other(format!(
                    "parameter {} references an output that does not exist yet ({template})",
                    parameter.name
                ))
            })?
        }
        ParameterValue::DatabaseUsername => cx
            .stack
            .database
            .as_ref()
            .and_then(|d| d.managed())
            .map(|m| m.username.clone())
            .unwrap_or_default(),
        ParameterValue::Generated { .. } | ParameterValue::DatabasePassword => {
            if exists {
                return Ok(parameter.name.clone());
            }
            generate_password()?
        }
        ParameterValue::Operator => return Ok(parameter.name.clone()),
    };
    let kind = match parameter.kind {
        ParameterType::String => aws_sdk_ssm::types::ParameterType::String,
        ParameterType::SecureString => aws_sdk_ssm::types::ParameterType::SecureString,
    };
    let mut call =
        cx.c.ssm
            .put_parameter()
            .name(&parameter.name)
            .value(value)
            .r#type(kind)
            .set_description(parameter.description.clone());
    call = if exists {
        call.overwrite(true)
    } else {
        call.set_tags(Some(
            cx.tags(&r.id, &r.name)
                .into_iter()
                .map(|(k, v)| aws_sdk_ssm::types::Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(error::build("a tag"))?,
        ))
    };
    call.send().await.map_err(error::call("ssm:PutParameter"))?;
    Ok(crate::desired::parameter_arn(cx.known, &parameter.name))
}

pub(super) async fn delete(cx: &Ctx<'_>, a: &Actual) -> Result<()> {
    use crate::resource::Kind as K;
    match a.kind {
        K::OidcProvider => delete_oidc_provider(cx, a).await?,
        K::Role => {
            let iam = &cx.c.iam;
            for arn in attached_policies(cx.c, &a.name).await? {
                iam.detach_role_policy()
                    .role_name(&a.name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(error::call("iam:DetachRolePolicy"))?;
            }
            let inline = iam
                .list_role_policies()
                .role_name(&a.name)
                .send()
                .await
                .map_err(error::call("iam:ListRolePolicies"))?;
            for name in inline.policy_names() {
                iam.delete_role_policy()
                    .role_name(&a.name)
                    .policy_name(name)
                    .send()
                    .await
                    .map_err(error::call("iam:DeleteRolePolicy"))?;
            }
            iam.delete_role()
                .role_name(&a.name)
                .send()
                .await
                .map_err(error::call("iam:DeleteRole"))?;
        }
        K::Repository => {
            cx.c.ecr
                .delete_repository()
                .repository_name(&a.name)
                .force(true)
                .send()
                .await
                .map_err(error::call("ecr:DeleteRepository"))?;
        }
        K::LogGroup => {
            cx.c.logs
                .delete_log_group()
                .log_group_name(&a.name)
                .send()
                .await
                .map_err(error::call("logs:DeleteLogGroup"))?;
        }
        K::Parameter => {
            cx.c.ssm
                .delete_parameter()
                .name(&a.name)
                .send()
                .await
                .map_err(error::call("ssm:DeleteParameter"))?;
        }
        _ => {
            return Err(Error::Other(format!(
                "identity::delete called for {}",
                a.kind
            )));
        }
    }
    Ok(())
}

/// The stack's tags for an IAM resource (roles and the OIDC provider take the same type).
fn iam_tags(cx: &Ctx<'_>, r: &Resource) -> Result<Vec<aws_sdk_iam::types::Tag>> {
    cx.tags(&r.id, &r.name)
        .into_iter()
        .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(error::build("a tag"))
}
