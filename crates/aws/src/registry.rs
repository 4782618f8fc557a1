//! `berth build --push`: where a service's image goes (its ECR repository's URI) and the
//! credentials of that registry, from ECR's GetAuthorizationToken.

use std::fmt;

use berth_spec::Service;

use crate::clients::Clients;
use crate::error::{self, Error, Result};

/// A registry login: the repository's URI, the registry host and ECR's user and password.
pub struct RegistryLogin {
    /// `<account>.dkr.ecr.<region>.amazonaws.com/<repository>`.
    pub repository_uri: String,
    /// The registry the token is for (the token's endpoint, without its scheme).
    pub registry: String,
    pub username: String,
    password: String,
}

impl RegistryLogin {
    /// The password (valid 12 hours): for the engine's `login --password-stdin` only.
    pub fn expose_password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("repository_uri", &self.repository_uri)
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"********")
            .finish()
    }
}

/// ECR's token is base64 of `user:password` (the user is `AWS`).
fn credentials(token: &str) -> Result<(String, String)> {
    let bad =
        || Error::Other("ecr:GetAuthorizationToken returned a token berth cannot read".into());
    let decoded = aws_smithy_types::base64::decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (user, password) = text.split_once(':').ok_or_else(bad)?;
    if user.is_empty() || password.is_empty() {
        return Err(bad());
    }
    Ok((user.to_owned(), password.to_owned()))
}

/// The service's repository URI and a login to its registry.
pub(crate) async fn login(
    c: &Clients,
    environment: &str,
    service: &Service,
) -> Result<RegistryLogin> {
    let repo = &service.repository;
    let found = match c
        .ecr
        .describe_repositories()
        .repository_names(repo)
        .send()
        .await
    {
        Ok(found) => found,
        Err(e) if error::code(&e) == Some("RepositoryNotFoundException") => {
            return Err(Error::Other(format!(
                "repository {repo} does not exist: run `berth up -e {environment}` first"
            )));
        }
        Err(e) => return Err(error::call("ecr:DescribeRepositories")(e)),
    };
    let repository_uri = found
        .repositories()
        .first()
        .and_then(|r| r.repository_uri())
        .ok_or_else(|| Error::Other(format!("repository {repo} has no URI")))?
        .to_owned();
    let token = c
        .ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(error::call("ecr:GetAuthorizationToken"))?;
    let data = token
        .authorization_data()
        .first()
        .ok_or_else(|| Error::Other("ecr:GetAuthorizationToken returned no token".into()))?;
    let (username, password) = credentials(data.authorization_token().unwrap_or(""))?;
    // The registry is the repository URI's host (the token's endpoint names the same one).
    let registry = repository_uri
        .split_once('/')
        .map_or(repository_uri.as_str(), |(host, _)| host)
        .to_owned();
    Ok(RegistryLogin {
        repository_uri,
        registry,
        username,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_base64_of_user_colon_password() {
        let token = aws_smithy_types::base64::encode("AWS:pass:with:colons");
        assert_eq!(
            credentials(&token).unwrap(),
            ("AWS".to_owned(), "pass:with:colons".to_owned())
        );
        for bad in ["not base64!", &aws_smithy_types::base64::encode("no-colon")] {
            let error = credentials(bad).unwrap_err().to_string();
            assert!(error.contains("cannot read"), "{error}");
            assert!(!error.contains("no-colon"), "the token leaks: {error}");
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let login = RegistryLogin {
            repository_uri: "1.dkr.ecr.r.amazonaws.com/x".into(),
            registry: "1.dkr.ecr.r.amazonaws.com".into(),
            username: "AWS".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{login:?}").contains("s3cret"));
    }
}
