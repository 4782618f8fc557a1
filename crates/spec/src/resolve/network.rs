//! `[network]`: the VPC, its subnets and NAT gateways.

use crate::model::{Cidr, NatGateways, Network};
use crate::reader::{Problems, Sp, Table};

pub(crate) fn network(top: &mut Table<'_, '_>, problems: &mut Problems, stack: &str) -> Network {
    let mut network = Network {
        vpc_name: format!("{stack}-vpc"),
        cidr: Cidr {
            addr: [10, 0, 0, 0].into(),
            prefix: 16,
        },
        availability_zones: 2,
        public_subnets: Vec::new(),
        private_subnets: Vec::new(),
        nat: NatGateways::PerAz,
    };
    let Some(mut t) = top.table(problems, "network") else {
        derive_subnets(&mut network, problems, None);
        return network;
    };
    if let Some(name) = t.text(problems, "vpc_name") {
        network.vpc_name = name.value;
    }
    let cidr = t
        .text(problems, "cidr")
        .and_then(|c| match Cidr::parse(&c.value) {
            Ok(cidr) if (16..=28).contains(&cidr.prefix) => Some(Sp::new(cidr, c.span)),
            Ok(_) => {
                problems.at(
                    "berth::bad_value",
                    c.span,
                    "a VPC's CIDR block is between /16 and /28",
                    "prefix out of range",
                );
                None
            }
            Err(why) => {
                problems.at("berth::bad_value", c.span, why, "invalid CIDR block");
                None
            }
        });
    if let Some(cidr) = &cidr {
        network.cidr = cidr.value;
    }
    if let Some(azs) = t.u32(problems, "availability_zones", 2, 6) {
        network.availability_zones = u8::try_from(azs.value).unwrap_or(2);
    }
    if let Some(nat) = t.str(problems, "nat") {
        network.nat = match nat.value {
            "per_az" => NatGateways::PerAz,
            "single" => NatGateways::Single,
            "none" => NatGateways::None,
            other => {
                problems.at(
                    "berth::bad_value",
                    nat.span,
                    format!("`nat` must be \"per_az\", \"single\" or \"none\", not \"{other}\""),
                    "unknown NAT mode",
                );
                NatGateways::PerAz
            }
        };
    }
    let public = subnet_list(&mut t, problems, "public_subnets", &network);
    let private = subnet_list(&mut t, problems, "private_subnets", &network);
    let table_span = t.span.clone();
    t.finish(problems);
    derive_subnets(
        &mut network,
        problems,
        cidr.as_ref().map(|c| c.span.clone()),
    );
    if let Some(p) = public {
        network.public_subnets = p.iter().map(|s| s.value).collect();
    }
    if let Some(p) = private {
        network.private_subnets = p.iter().map(|s| s.value).collect();
    }
    // Given subnets must not overlap each other.
    let all: Vec<Cidr> = network
        .public_subnets
        .iter()
        .chain(&network.private_subnets)
        .copied()
        .collect();
    for (i, a) in all.iter().enumerate() {
        if let Some(b) = all[i + 1..].iter().find(|b| a.overlaps(**b)) {
            problems.at(
                "berth::bad_value",
                table_span.clone(),
                format!("subnets {a} and {b} overlap"),
                "overlapping subnets",
            );
        }
    }
    network
}

fn subnet_list(
    t: &mut Table<'_, '_>,
    problems: &mut Problems,
    key: &'static str,
    network: &Network,
) -> Option<Vec<Sp<Cidr>>> {
    let list = t.strings(problems, key)?;
    let mut out = Vec::new();
    for item in list.value {
        match Cidr::parse(&item.value) {
            Ok(c) if network.cidr.contains(c) && c.prefix <= 28 => out.push(Sp::new(c, item.span)),
            Ok(c) => problems.at(
                "berth::bad_value",
                item.span,
                format!(
                    "subnet {c} is not a /16../28 block inside the VPC's {}",
                    network.cidr
                ),
                "outside the VPC",
            ),
            Err(why) => problems.at("berth::bad_value", item.span, why, "invalid CIDR block"),
        }
    }
    if out.len() != usize::from(network.availability_zones) {
        problems.at(
            "berth::bad_value",
            list.span,
            format!(
                "`network.{key}` needs one subnet per Availability Zone ({})",
                network.availability_zones
            ),
            format!("{} given", out.len()),
        );
    }
    Some(out)
}

/// Public subnets in the VPC's first half, private in the second, each 1/16 of the VPC
/// (what the console's "VPC and more" does: 10.0.0.0/16 → 10.0.0.0/20, 10.0.128.0/20, ...).
fn derive_subnets(
    network: &mut Network,
    problems: &mut Problems,
    span: Option<std::ops::Range<usize>>,
) {
    let prefix = network.cidr.prefix + 4;
    let half = 1u32 << 3;
    let mut public = Vec::new();
    let mut private = Vec::new();
    for az in 0..u32::from(network.availability_zones) {
        match (
            network.cidr.subnet(prefix, az),
            network.cidr.subnet(prefix, half + az),
        ) {
            (Some(a), Some(b)) if prefix <= 28 => {
                public.push(a);
                private.push(b);
            }
            _ => {
                if let Some(span) = span {
                    problems.at(
                        "berth::bad_value",
                        span,
                        format!("{} is too small to derive subnets; list them in `public_subnets` and `private_subnets`", network.cidr),
                        "too small",
                    );
                }
                return;
            }
        }
    }
    network.public_subnets = public;
    network.private_subnets = private;
}
