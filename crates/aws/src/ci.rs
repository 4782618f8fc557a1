//! The identity GitHub Actions deploys with (`[ci.github]`): the account's OIDC provider for
//! GitHub's tokens, a deploy role and a plan role that only the stack's repository can
//! assume, each with least privilege over this stack's resources (pure).
//!
//! Least privilege, by ARN: every statement names this stack's repositories, services,
//! roles, log groups, parameters and database. The only `"*"` resources are the actions IAM
//! cannot scope: ECR's login token, `ecs:RegisterTaskDefinition` (the documented minimum of
//! aws-actions' own deploy action) and the Describe calls of EC2, ELB, Application Auto
//! Scaling, `ecs:DescribeTaskDefinition` and `logs:DescribeLogGroups`, which read metadata
//! only. A role can pass only the stack's task and execution roles, and only to ECS tasks.

use berth_spec::{GithubCi, ParameterValue, Stack};
use serde_json::{Value, json};

use crate::desired::{Known, parameter_arn};

/// The host of GitHub's OIDC issuer (the provider's URL without `https://`).
pub const GITHUB_OIDC_HOST: &str = "token.actions.githubusercontent.com";
/// The audience `aws-actions/configure-aws-credentials` asks GitHub's tokens for.
pub const GITHUB_OIDC_AUDIENCE: &str = "sts.amazonaws.com";
/// GitHub's published certificate thumbprints. AWS trusts GitHub's issuer through its own
/// root CAs today; the API still records thumbprints, and older partitions check them.
pub const GITHUB_OIDC_THUMBPRINTS: [&str; 2] = [
    "6938fd4d98bab03faadb97b34396831e3780aea1",
    "1c58a3a8518e8759bf075b76b750d4f2df264fcd",
];

/// The stack's `[ci.github]` with the repository allowed to deploy, when `up` of
/// `known.environment` creates CI's identity: the section names a repository, and this is
/// the environment the workflows deploy to.
pub fn enabled<'s>(stack: &'s Stack, known: &Known) -> Option<(&'s GithubCi, &'s str)> {
    let ci = stack.ci.as_ref()?;
    let repository = ci.repository.as_deref()?;
    (ci.environment == known.environment).then_some((ci, repository))
}

/// The ARN of the account's GitHub OIDC provider (one per issuer per account).
pub fn provider_arn(known: &Known) -> String {
    format!(
        "arn:aws:iam::{}:oidc-provider/{GITHUB_OIDC_HOST}",
        known.account_id
    )
}

/// The token subject of a workflow run on a push to `branch` of `repository`: what the
/// deploy role trusts. The generated deploy job sets no `environment:` (which would make
/// the subject `repo:…:environment:NAME`, from any branch the environment allows).
pub fn push_subject(repository: &str, branch: &str) -> String {
    format!("repo:{repository}:ref:refs/heads/{branch}")
}

/// The token subject of a pull request's workflow run: what the plan role trusts.
pub fn pull_request_subject(repository: &str) -> String {
    format!("repo:{repository}:pull_request")
}

/// A role's trust policy: GitHub's tokens for this audience and exactly this subject.
pub fn trust_policy(known: &Known, subject: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn(known)},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{GITHUB_OIDC_HOST}:aud"): GITHUB_OIDC_AUDIENCE,
                format!("{GITHUB_OIDC_HOST}:sub"): subject,
            }}
        }]
    })
    .to_string()
}

fn statement(sid: &str, actions: &[&str], resources: Vec<String>) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources})
}

struct Arns<'a> {
    stack: &'a Stack,
    known: &'a Known,
}

impl Arns<'_> {
    fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            self.known.region, self.known.account_id
        )
    }

    fn role(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.known.account_id)
    }

    /// The execution role and the task roles: what task definitions name.
    fn task_roles(&self) -> Vec<String> {
        let iam = &self.stack.iam;
        std::iter::once(&iam.execution_role.name)
            .chain(iam.task_roles.iter().map(|r| &r.name))
            .map(|name| self.role(name))
            .collect()
    }

    fn repositories(&self) -> Vec<String> {
        self.stack
            .registries
            .iter()
            .map(|r| self.arn("ecr", &format!("repository/{}", r.name)))
            .collect()
    }

    fn services(&self) -> Vec<String> {
        self.stack
            .services
            .iter()
            .map(|s| {
                self.arn(
                    "ecs",
                    &format!("service/{}/{}", self.stack.cluster, s.service_name),
                )
            })
            .collect()
    }

    fn task_families(&self) -> Vec<String> {
        self.stack
            .services
            .iter()
            .map(|s| self.arn("ecs", &format!("task-definition/{}:*", s.task_family)))
            .collect()
    }

    fn log_groups(&self) -> Vec<String> {
        self.stack
            .services
            .iter()
            .flat_map(|s| {
                let group = self.arn("logs", &format!("log-group:{}", s.logs.group));
                [group.clone(), format!("{group}:*")]
            })
            .collect()
    }

    /// The parameters berth reads back (the operator's own are never read).
    fn parameters(&self) -> Vec<String> {
        self.stack
            .parameters
            .iter()
            .filter(|p| !matches!(p.value, ParameterValue::Operator))
            .map(|p| parameter_arn(self.known, &p.name))
            .collect()
    }
}

/// What `berth plan` reads (discovery): both roles get it.
fn read_statements(a: &Arns<'_>, ci: &GithubCi) -> Vec<Value> {
    let stack = a.stack;
    let mut roles = a.task_roles();
    // Discovery looks for it whatever the strategies (to delete it once none shifts).
    roles.push(a.role(&crate::desired::infrastructure_role_name(stack)));
    roles.push(a.role(&ci.deploy_role));
    roles.push(a.role(&ci.plan_role));
    let mut out = vec![
        // IAM cannot scope these: they return metadata only.
        statement(
            "DescribeUnscopable",
            &[
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingPolicies",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeNatGateways",
                "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcAttribute",
                "ec2:DescribeVpcs",
                "ecs:DescribeTaskDefinition",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTargetGroups",
                "logs:DescribeLogGroups",
            ],
            vec!["*".into()],
        ),
        statement(
            "ReadRoles",
            &[
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
            ],
            roles,
        ),
        statement(
            "ReadOidcProvider",
            &[
                "iam:GetOpenIDConnectProvider",
                "iam:ListOpenIDConnectProviderTags",
            ],
            vec![provider_arn(a.known)],
        ),
        statement(
            "ReadCluster",
            &["ecs:DescribeClusters"],
            vec![a.arn("ecs", &format!("cluster/{}", stack.cluster))],
        ),
        statement("ReadServices", &["ecs:DescribeServices"], a.services()),
    ];
    if !stack.registries.is_empty() {
        out.push(statement(
            "ReadRepositories",
            &[
                "ecr:DescribeImages",
                "ecr:DescribeRepositories",
                "ecr:GetLifecyclePolicy",
            ],
            a.repositories(),
        ));
    }
    let parameters = a.parameters();
    if !parameters.is_empty() {
        out.push(statement(
            "ReadParameters",
            &["ssm:GetParameters"],
            parameters,
        ));
    }
    if let Some(db) = stack.database.as_ref().and_then(|d| d.managed()) {
        out.push(statement(
            "ReadDatabase",
            &["rds:DescribeDBInstances", "rds:DescribeDBSubnetGroups"],
            vec![
                a.arn("rds", &format!("db:{}", db.identifier)),
                a.arn("rds", &format!("subgrp:{}", db.subnet_group)),
            ],
        ));
    }
    out
}

/// The plan role's policy: read what `berth plan` discovers, nothing else.
pub fn plan_policy(stack: &Stack, known: &Known, ci: &GithubCi) -> String {
    let a = Arns { stack, known };
    json!({"Version": "2012-10-17", "Statement": read_statements(&a, ci)}).to_string()
}

/// The deploy role's policy: what `berth build --push` and `berth deploy` do, on this
/// stack's resources only.
pub fn deploy_policy(stack: &Stack, known: &Known, ci: &GithubCi) -> String {
    let a = Arns { stack, known };
    let mut statements = read_statements(&a, ci);
    // Statement ids are unique within a policy: the deploy role's DescribeServices comes
    // with UpdateService below.
    statements.retain(|s| s["Sid"] != "ReadServices");
    statements.push(statement(
        "DeployServices",
        &["ecs:DescribeServices", "ecs:UpdateService"],
        a.services(),
    ));
    if !stack.registries.is_empty() {
        // A token for the account's registry: IAM cannot scope it to a repository (the
        // pushes themselves are scoped below).
        statements.push(statement(
            "EcrLogin",
            &["ecr:GetAuthorizationToken"],
            vec!["*".into()],
        ));
        statements.push(statement(
            "PushImages",
            &[
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:CompleteLayerUpload",
                "ecr:GetDownloadUrlForLayer",
                "ecr:InitiateLayerUpload",
                "ecr:PutImage",
                "ecr:UploadLayerPart",
            ],
            a.repositories(),
        ));
    }
    // IAM cannot scope RegisterTaskDefinition to a family; the revision's tags can be, and
    // the roles it may name are (PassTaskRoles).
    statements.push(statement(
        "RegisterTaskDefinitions",
        &["ecs:RegisterTaskDefinition"],
        vec!["*".into()],
    ));
    let mut tag = statement(
        "TagTaskDefinitions",
        &["ecs:TagResource"],
        a.task_families(),
    );
    tag["Condition"] = json!({"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}});
    statements.push(tag);
    let mut pass = statement("PassTaskRoles", &["iam:PassRole"], a.task_roles());
    pass["Condition"] = json!({"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}});
    statements.push(pass);
    let shifting: Vec<&berth_spec::Service> = stack
        .services
        .iter()
        .filter(|s| crate::strategy::shifts(&s.deployment.strategy))
        .collect();
    if !shifting.is_empty() {
        // A blue/green, canary or linear deploy names the infrastructure role and is
        // watched through the service's deployment history.
        let mut pass = statement(
            "PassInfrastructureRole",
            &["iam:PassRole"],
            vec![a.role(&crate::desired::infrastructure_role_name(stack))],
        );
        pass["Condition"] = json!({"StringEquals": {"iam:PassedToService": "ecs.amazonaws.com"}});
        statements.push(pass);
        let under = |kind: &str| -> Vec<String> {
            shifting
                .iter()
                .map(|s| {
                    a.arn(
                        "ecs",
                        &format!("{kind}/{}/{}/*", stack.cluster, s.service_name),
                    )
                })
                .collect()
        };
        statements.push(statement(
            "ListDeployments",
            &["ecs:ListServiceDeployments"],
            a.services(),
        ));
        let mut watched = under("service-deployment");
        watched.extend(under("service-revision"));
        statements.push(statement(
            "WatchDeployments",
            &[
                "ecs:DescribeServiceDeployments",
                "ecs:DescribeServiceRevisions",
            ],
            watched,
        ));
    }
    statements.push(statement(
        "ReadLogs",
        &[
            "logs:DescribeLogStreams",
            "logs:FilterLogEvents",
            "logs:GetLogEvents",
        ],
        a.log_groups(),
    ));
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}
