use std::collections::HashMap;

use serde::Serialize;

use super::{ParameterValue, Reference, Stack};

/// The values of the stack's outputs once its resources exist, for rendering String
/// parameters (`${database.host}`, `${load_balancer.url}`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Outputs {
    pub database_host: Option<String>,
    pub database_port: Option<u16>,
    pub database_name: Option<String>,
    /// `ecs-alb-123.us-east-1.elb.amazonaws.com`, or `127.0.0.1:8080` locally.
    pub load_balancer_dns_name: Option<String>,
    /// `http://<dns name>` (no trailing slash).
    pub load_balancer_url: Option<String>,
}

impl Outputs {
    /// The value of an output reference; `None` for a parameter reference or an output not
    /// known yet.
    pub fn get(&self, reference: &Reference) -> Option<String> {
        match reference {
            Reference::DatabaseHost => self.database_host.clone(),
            Reference::DatabasePort => self.database_port.map(|p| p.to_string()),
            Reference::DatabaseName => self.database_name.clone(),
            Reference::LoadBalancerUrl => self.load_balancer_url.clone(),
            Reference::LoadBalancerDnsName => self.load_balancer_dns_name.clone(),
            Reference::Parameter(_) => None,
        }
    }
}

/// A String parameter could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter {parameter} references ${{{reference}}}, which has no value yet")]
pub struct RenderError {
    pub parameter: String,
    pub reference: Reference,
}

impl Stack {
    /// The value of every String parameter that has one in the file, references filled in
    /// from `outputs` and from other String parameters, in file order.
    pub fn render_parameters(
        &self,
        outputs: &Outputs,
    ) -> Result<Vec<(String, String)>, RenderError> {
        let mut done: HashMap<&str, String> = HashMap::new();
        let mut out = Vec::new();
        for parameter in &self.parameters {
            if let ParameterValue::Template { .. } = parameter.value {
                let value = self.render_one(&parameter.name, outputs, &mut done, 0)?;
                out.push((parameter.name.clone(), value));
            }
        }
        Ok(out)
    }

    fn render_one<'a>(
        &'a self,
        name: &'a str,
        outputs: &Outputs,
        done: &mut HashMap<&'a str, String>,
        depth: usize,
    ) -> Result<String, RenderError> {
        if let Some(value) = done.get(name) {
            return Ok(value.clone());
        }
        let missing = |reference: &Reference| RenderError {
            parameter: name.to_owned(),
            reference: reference.clone(),
        };
        let Some(ParameterValue::Template { template }) = self.parameter(name).map(|p| &p.value)
        else {
            return Err(missing(&Reference::Parameter(name.to_owned())));
        };
        let mut value = String::new();
        for segment in &template.segments {
            match segment {
                super::Segment::Literal(text) => value.push_str(text),
                super::Segment::Reference(Reference::Parameter(other)) => {
                    // Validation rejects cycles; the depth bound keeps a hand-built Stack safe.
                    if depth > self.parameters.len() {
                        return Err(missing(&Reference::Parameter(other.clone())));
                    }
                    let other = self
                        .parameters
                        .iter()
                        .find(|p| &p.name == other)
                        .map(|p| p.name.as_str())
                        .ok_or_else(|| missing(&Reference::Parameter(other.clone())))?;
                    value.push_str(&self.render_one(other, outputs, done, depth + 1)?);
                }
                super::Segment::Reference(reference) => {
                    value.push_str(&outputs.get(reference).ok_or_else(|| missing(reference))?);
                }
            }
        }
        done.insert(name, value.clone());
        Ok(value)
    }

    /// The local environment's state directory, resolved against the stack file's directory.
    pub fn state_dir(&self, local: &super::LocalEnvironment) -> std::path::PathBuf {
        self.root.join(&local.state_dir)
    }
}
