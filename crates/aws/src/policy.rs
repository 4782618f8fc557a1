//! Whether a set of IAM policy documents allows an action on a resource (pure).
//!
//! `berth doctor` asks this of the execution role's policies (managed and inline) instead
//! of IAM's policy simulator, which moto does not emulate and which needs a permission of
//! its own. What is evaluated: `Effect`, `Action`/`NotAction`, `Resource`/`NotResource`
//! with `*` and `?` wildcards (actions case-insensitive), an explicit Deny beating any
//! Allow. What is not: `Condition` blocks (a statement with one is taken to apply),
//! permissions boundaries, service control policies and resource policies; so "allowed"
//! here means "no identity policy is missing", which is what the doctor's checks need.

use serde_json::Value;

/// The verdict of a set of policies for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// No statement allows it.
    NotAllowed,
    /// A statement denies it explicitly.
    Denied,
}

/// `documents`: policy documents as JSON text (already URL-decoded); one that does not
/// parse allows nothing.
pub fn evaluate(documents: &[String], action: &str, resource: &str) -> Verdict {
    let mut allowed = false;
    for doc in documents {
        let Ok(doc) = serde_json::from_str::<Value>(doc) else {
            continue;
        };
        for statement in one_or_many(&doc["Statement"]) {
            if !applies(statement, action, resource) {
                continue;
            }
            match statement["Effect"].as_str() {
                Some("Deny") => return Verdict::Denied,
                Some("Allow") => allowed = true,
                _ => {}
            }
        }
    }
    if allowed {
        Verdict::Allowed
    } else {
        Verdict::NotAllowed
    }
}

fn one_or_many(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn patterns(v: &Value) -> Vec<&str> {
    one_or_many(v)
        .into_iter()
        .filter_map(Value::as_str)
        .collect()
}

fn applies(statement: &Value, action: &str, resource: &str) -> bool {
    let action_matches = |key: &str| {
        patterns(&statement[key])
            .iter()
            .any(|p| glob(&p.to_ascii_lowercase(), &action.to_ascii_lowercase()))
    };
    let resource_matches = |key: &str| patterns(&statement[key]).iter().any(|p| glob(p, resource));
    let action_ok = if statement.get("Action").is_some() {
        action_matches("Action")
    } else if statement.get("NotAction").is_some() {
        !action_matches("NotAction")
    } else {
        false
    };
    let resource_ok = if statement.get("Resource").is_some() {
        resource_matches("Resource")
    } else if statement.get("NotResource").is_some() {
        !resource_matches("NotResource")
    } else {
        false
    };
    action_ok && resource_ok
}

/// IAM's wildcard match: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // The classic two-pointer match with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(json: &[serde_json::Value]) -> Vec<String> {
        json.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn wildcards_lists_and_single_statements() {
        let managed = serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "logs:*"],
            "Resource": "*"
        }]});
        let inline = serde_json::json!({"Statement": {
            "Effect": "Allow", "Action": "ssm:GetParameters",
            "Resource": "arn:aws:ssm:us-east-1:1:parameter/ecs/backend/*"
        }});
        let d = docs(&[managed, inline]);
        let cases = [
            (
                "ecr:BatchGetImage",
                "arn:aws:ecr:us-east-1:1:repository/x",
                Verdict::Allowed,
            ),
            ("ECR:batchgetimage", "arn:x", Verdict::Allowed),
            ("logs:PutLogEvents", "arn:x", Verdict::Allowed),
            ("ecr:PutImage", "arn:x", Verdict::NotAllowed),
            (
                "ssm:GetParameters",
                "arn:aws:ssm:us-east-1:1:parameter/ecs/backend/DB_HOST",
                Verdict::Allowed,
            ),
            (
                "ssm:GetParameters",
                "arn:aws:ssm:us-east-1:1:parameter/ecs/frontend/API_URL",
                Verdict::NotAllowed,
            ),
        ];
        for (action, resource, expected) in cases {
            assert_eq!(
                evaluate(&d, action, resource),
                expected,
                "{action} {resource}"
            );
        }
    }

    #[test]
    fn an_explicit_deny_wins_and_not_action_inverts() {
        let d = docs(&[
            serde_json::json!({"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}),
            serde_json::json!({"Statement": [{"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:*:*:key/k?"}]}),
        ]);
        assert_eq!(evaluate(&d, "ssm:GetParameters", "arn:p"), Verdict::Allowed);
        assert_eq!(evaluate(&d, "iam:PassRole", "arn:r"), Verdict::NotAllowed);
        assert_eq!(
            evaluate(&d, "kms:Decrypt", "arn:aws:kms:us-east-1:1:key/k1"),
            Verdict::Denied
        );
        assert_eq!(
            evaluate(&d, "kms:Decrypt", "arn:aws:kms:us-east-1:1:key/k12"),
            Verdict::Allowed
        );
        assert_eq!(
            evaluate(&["not json".into()], "a:b", "*"),
            Verdict::NotAllowed
        );
    }
}
