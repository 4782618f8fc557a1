//! The DB subnet group and the RDS PostgreSQL instance.

use super::Ctx;
use crate::error::{self, Error, Result};
use crate::resource::{Actual, Resource, Spec};

fn tags(cx: &Ctx<'_>, r: &Resource) -> Vec<aws_sdk_rds::types::Tag> {
    cx.tags(&r.id, &r.name)
        .into_iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
        .collect()
}

pub(super) async fn create(cx: &Ctx<'_>, r: &Resource) -> Result<String> {
    let rds = &cx.c.rds;
    match &r.spec {
        Spec::DbSubnetGroup { subnets } => {
            let out = rds
                .create_db_subnet_group()
                .db_subnet_group_name(&r.name)
                .db_subnet_group_description(format!("berth: {} private subnets", cx.stack.name))
                .set_subnet_ids(Some(cx.phys_all(subnets)?))
                .set_tags(Some(tags(cx, r)))
                .send()
                .await
                .map_err(error::call("rds:CreateDBSubnetGroup"))?;
            Ok(out
                .db_subnet_group()
                .and_then(|g| g.db_subnet_group_arn())
                .unwrap_or(&r.name)
                .to_owned())
        }
        Spec::Database {
            db,
            name,
            port,
            password_parameter,
        } => {
            let password =
                cx.c.ssm
                    .get_parameter()
                    .name(password_parameter)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(error::call("ssm:GetParameter"))?
                    .parameter()
                    .and_then(|p| p.value())
                    .unwrap_or("")
                    .to_owned();
            let out = rds
                .create_db_instance()
                .db_instance_identifier(&db.identifier)
                .db_instance_class(&db.instance_class)
                .engine(&db.engine)
                .engine_version(&db.version)
                .master_username(&db.username)
                .master_user_password(password)
                .allocated_storage(i32::try_from(db.allocated_storage).unwrap_or(i32::MAX))
                .storage_type(&db.storage_type)
                .backup_retention_period(i32::try_from(db.backup_retention_days).unwrap_or(35))
                .multi_az(db.multi_az)
                .storage_encrypted(db.storage_encrypted)
                .deletion_protection(db.deletion_protection)
                .publicly_accessible(false)
                .db_name(name)
                .port(i32::from(*port))
                .vpc_security_group_ids(cx.phys("sg/rds")?)
                .db_subnet_group_name(&db.subnet_group)
                .set_tags(Some(tags(cx, r)))
                .send()
                .await
                .map_err(error::call("rds:CreateDBInstance"))?;
            let arn = out
                .db_instance()
                .and_then(|i| i.db_instance_arn())
                .unwrap_or(&db.identifier)
                .to_owned();
            wait_available(cx, r).await?;
            Ok(arn)
        }
        _ => Err(Error::Other(format!("data::create called for {}", r.kind))),
    }
}

/// Waits for the instance to be `available`, then records its endpoint as the stack's
/// `database.host` / `database.port` outputs.
async fn wait_available(cx: &Ctx<'_>, r: &Resource) -> Result<()> {
    let (host, port) = cx
        .wait(&r.id, "available", || async {
            let out =
                cx.c.rds
                    .describe_db_instances()
                    .db_instance_identifier(&r.name)
                    .send()
                    .await
                    .map_err(error::call("rds:DescribeDBInstances"))?;
            let Some(i) = out.db_instances().first() else {
                return Ok(None);
            };
            Ok(match (i.db_instance_status(), i.endpoint()) {
                (Some("available"), Some(ep)) => Some((
                    ep.address().unwrap_or("").to_owned(),
                    ep.port()
                        .and_then(|p| u16::try_from(p).ok())
                        .unwrap_or(5432),
                )),
                _ => None,
            })
        })
        .await?;
    cx.update_outputs(|o| {
        o.database_host = Some(host);
        o.database_port = Some(port);
    });
    Ok(())
}

pub(super) async fn update(cx: &Ctx<'_>, r: &Resource, a: &Actual) -> Result<String> {
    let rds = &cx.c.rds;
    match &r.spec {
        Spec::DbSubnetGroup { subnets } => {
            rds.modify_db_subnet_group()
                .db_subnet_group_name(&r.name)
                .set_subnet_ids(Some(cx.phys_all(subnets)?))
                .send()
                .await
                .map_err(error::call("rds:ModifyDBSubnetGroup"))?;
        }
        Spec::Database { db, .. } => {
            rds.modify_db_instance()
                .db_instance_identifier(&db.identifier)
                .db_instance_class(&db.instance_class)
                .allocated_storage(i32::try_from(db.allocated_storage).unwrap_or(i32::MAX))
                .storage_type(&db.storage_type)
                .backup_retention_period(i32::try_from(db.backup_retention_days).unwrap_or(35))
                .multi_az(db.multi_az)
                .publicly_accessible(false)
                .vpc_security_group_ids(cx.phys("sg/rds")?)
                .apply_immediately(true)
                .send()
                .await
                .map_err(error::call("rds:ModifyDBInstance"))?;
            wait_available(cx, r).await?;
        }
        _ => return Err(Error::Other(format!("data::update called for {}", r.kind))),
    }
    Ok(a.physical.clone())
}

pub(super) async fn delete(cx: &Ctx<'_>, a: &Actual) -> Result<()> {
    let rds = &cx.c.rds;
    match a.kind {
        crate::resource::Kind::DbSubnetGroup => {
            rds.delete_db_subnet_group()
                .db_subnet_group_name(&a.name)
                .send()
                .await
                .map_err(error::call("rds:DeleteDBSubnetGroup"))?;
        }
        crate::resource::Kind::Database => {
            let mut call = rds.delete_db_instance().db_instance_identifier(&a.name);
            if cx.skip_final_snapshot {
                call = call.skip_final_snapshot(true);
            } else {
                let snapshot = format!(
                    "{}-final-{}",
                    a.name,
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0)
                );
                call = call
                    .skip_final_snapshot(false)
                    .final_db_snapshot_identifier(&snapshot);
                cx.kept
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!(
                        "final snapshot {snapshot} of RDS instance {}",
                        a.name
                    ));
            }
            call.send()
                .await
                .map_err(error::call("rds:DeleteDBInstance"))?;
            cx.wait(&a.id, "deleted", || async {
                match rds
                    .describe_db_instances()
                    .db_instance_identifier(&a.name)
                    .send()
                    .await
                {
                    Ok(out) if out.db_instances().is_empty() => Ok(Some(())),
                    Ok(_) => Ok(None),
                    Err(e) if error::code(&e) == Some("DBInstanceNotFound") => Ok(Some(())),
                    Err(e) => Err(error::call("rds:DescribeDBInstances")(e)),
                }
            })
            .await?;
        }
        _ => return Err(Error::Other(format!("data::delete called for {}", a.kind))),
    }
    Ok(())
}
