//! Listener rules: ALB path-pattern matching and rule selection by priority.
//!
//! The table is compiled once per [`super::Balancer::set_rules`] and read lock-free on every
//! request; it is generic over what a forward action points at, so selection is testable
//! without target groups. [`ListenerRules`] is the source the table is compiled from, so one
//! rule's weights can change (a traffic shift) without the caller restating the listener.

use super::BalancerError;
use super::config::{Forward, Rule, RuleRef, WeightedTargetGroup};

/// Longest path pattern the ALB accepts (S5.26).
/// Highest rule priority (S5.22).
const MAX_PRIORITY: u32 = 50_000;
/// Highest weight of a target group in a forward action (S5.29).
const MAX_WEIGHT: u32 = 999;

/// Whether `path` (without its query string) matches an ALB path pattern: case-sensitive,
/// anchored at both ends, `*` matches any run of characters (including `/`) and `?` exactly
/// one (S5.26).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let (pattern, path) = (pattern.as_bytes(), path.as_bytes());
    let (mut p, mut s) = (0, 0);
    // Position of the last `*` seen and the path position it currently stands for:
    // on a mismatch we let that star swallow one more byte and retry (linear-ish backtracking).
    let mut star: Option<(usize, usize)> = None;
    while s < path.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, s));
                p += 1;
            }
            Some(&c) if c == b'?' || c == path[s] => {
                p += 1;
                s += 1;
            }
            _ => match star {
                Some((star_p, star_s)) => {
                    p = star_p + 1;
                    s = star_s + 1;
                    star = Some((star_p, star_s + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Checks one path pattern against the ALB's rules (S5.26), the stack file's rule.
fn validate_pattern(pattern: &str) -> Result<(), BalancerError> {
    match berth_spec::rules::path_pattern_problem(pattern) {
        Some(problem) => Err(BalancerError::InvalidPathPattern {
            pattern: pattern.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

/// A forward action with its target groups resolved to `G`.
#[derive(Debug)]
pub(crate) struct CompiledForward<G> {
    /// Each target group with the running sum of weights up to and including it; weight-0
    /// groups are left out.
    groups: Box<[(G, u32)]>,
    total: u32,
}

impl<G> CompiledForward<G> {
    fn compile(
        forward: &Forward,
        resolve: &mut impl FnMut(&str) -> Result<G, BalancerError>,
    ) -> Result<Self, BalancerError> {
        let mut groups = Vec::with_capacity(forward.target_groups.len());
        let mut total = 0;
        for group in &forward.target_groups {
            if group.weight > MAX_WEIGHT {
                return Err(BalancerError::WeightOutOfRange {
                    target_group: group.name.clone(),
                    weight: group.weight,
                });
            }
            // Resolve even weight-0 groups so a typo is reported now, not when weights change.
            let resolved = resolve(&group.name)?;
            if group.weight > 0 {
                total += group.weight;
                groups.push((resolved, total));
            }
        }
        if total == 0 {
            return Err(BalancerError::EmptyForward);
        }
        Ok(Self {
            groups: groups.into_boxed_slice(),
            total,
        })
    }

    /// The target group for one request: by weight, with `roll` uniform in `0..total`
    /// supplied by the caller (so tests can pin it).
    pub(crate) fn choose_with(&self, roll: u32) -> &G {
        let index = self
            .groups
            .partition_point(|&(_, cumulative)| cumulative <= roll);
        &self.groups[index.min(self.groups.len() - 1)].0
    }

    /// The target group for one request, chosen by weighted random when there are several.
    pub(crate) fn choose(&self) -> &G {
        if self.groups.len() == 1 {
            &self.groups[0].0
        } else {
            self.choose_with(fastrand::u32(0..self.total))
        }
    }
}

#[derive(Debug)]
struct CompiledRule<G> {
    patterns: Box<[Box<str>]>,
    action: CompiledForward<G>,
}

/// The listener's rules sorted by priority, then the default action.
#[derive(Debug)]
pub(crate) struct RuleTable<G> {
    rules: Box<[CompiledRule<G>]>,
    default: CompiledForward<G>,
}

impl<G> RuleTable<G> {
    /// Validates and sorts `rules`, resolving every target group name with `resolve`.
    pub(crate) fn compile(
        rules: &[Rule],
        default: &Forward,
        mut resolve: impl FnMut(&str) -> Result<G, BalancerError>,
    ) -> Result<Self, BalancerError> {
        let mut sorted: Vec<&Rule> = rules.iter().collect();
        sorted.sort_by_key(|rule| rule.priority);
        for pair in sorted.windows(2) {
            if pair[0].priority == pair[1].priority {
                return Err(BalancerError::DuplicatePriority {
                    priority: pair[0].priority,
                });
            }
        }
        let compiled = sorted
            .into_iter()
            .map(|rule| {
                if !(1..=MAX_PRIORITY).contains(&rule.priority) {
                    return Err(BalancerError::PriorityOutOfRange {
                        priority: rule.priority,
                    });
                }
                if rule.path_patterns.is_empty() {
                    return Err(BalancerError::NoPathPattern {
                        priority: rule.priority,
                    });
                }
                for pattern in &rule.path_patterns {
                    validate_pattern(pattern)?;
                }
                Ok(CompiledRule {
                    patterns: rule
                        .path_patterns
                        .iter()
                        .map(|p| p.as_str().into())
                        .collect(),
                    action: CompiledForward::compile(&rule.action, &mut resolve)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            rules: compiled.into_boxed_slice(),
            default: CompiledForward::compile(default, &mut resolve)?,
        })
    }

    /// The action of the first rule (by priority) matching `path`, else the default action.
    pub(crate) fn select(&self, path: &str) -> &CompiledForward<G> {
        self.rules
            .iter()
            .find(|rule| rule.patterns.iter().any(|p| path_matches(p, path)))
            .map_or(&self.default, |rule| &rule.action)
    }
}

/// A listener's rules as configured (the source of a [`RuleTable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListenerRules {
    pub(crate) rules: Vec<Rule>,
    pub(crate) default: Forward,
}

impl ListenerRules {
    fn action_mut(&mut self, which: RuleRef) -> Result<&mut Forward, BalancerError> {
        match which {
            RuleRef::Default => Ok(&mut self.default),
            RuleRef::Priority(priority) => self
                .rules
                .iter_mut()
                .find(|rule| rule.priority == priority)
                .map(|rule| &mut rule.action)
                .ok_or(BalancerError::UnknownRule { rule: which }),
        }
    }

    /// Sets the weight of each named target group in one rule's forward action, adding the
    /// groups it does not forward to yet; the other groups keep their weights. Validation
    /// (names, ranges, a positive total) is the compiler's, so the caller compiles before
    /// keeping the result.
    pub(crate) fn set_weights(
        &mut self,
        which: RuleRef,
        weights: &[WeightedTargetGroup],
    ) -> Result<(), BalancerError> {
        let action = self.action_mut(which)?;
        for wanted in weights {
            match action
                .target_groups
                .iter_mut()
                .find(|group| group.name == wanted.name)
            {
                Some(group) => group.weight = wanted.weight,
                None => action.target_groups.push(wanted.clone()),
            }
        }
        Ok(())
    }

    /// Every rule's forward action, rules by priority then the default rule.
    pub(crate) fn actions(&self) -> Vec<(RuleRef, &Forward)> {
        let mut rules: Vec<&Rule> = self.rules.iter().collect();
        rules.sort_by_key(|rule| rule.priority);
        rules
            .into_iter()
            .map(|rule| (RuleRef::Priority(rule.priority), &rule.action))
            .chain([(RuleRef::Default, &self.default)])
            .collect()
    }

    /// The first rule forwarding to `target_group`, even with weight 0: ELB refuses to delete
    /// a target group a rule still names.
    pub(crate) fn user_of(&self, target_group: &str) -> Option<RuleRef> {
        self.actions()
            .into_iter()
            .find(|(_, action)| action.target_groups.iter().any(|g| g.name == target_group))
            .map(|(which, _)| which)
    }

    /// Compiles the table the request path reads.
    pub(crate) fn compile<G>(
        &self,
        resolve: impl FnMut(&str) -> Result<G, BalancerError>,
    ) -> Result<RuleTable<G>, BalancerError> {
        RuleTable::compile(&self.rules, &self.default, resolve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_match_like_the_alb() {
        let cases = [
            // (pattern, path, matches)
            ("/api/*", "/api/files", true),
            ("/api/*", "/api/", true),
            ("/api/*", "/api/files/1/download", true), // `*` spans `/`
            ("/api/*", "/api", false),
            ("/api/*", "/API/files", false), // case-sensitive
            ("/api*", "/api", true),
            ("/api*", "/apiary", true),
            ("*", "/", true),
            ("*", "/anything/at/all", true),
            ("/", "/", true),
            ("/", "/index.html", false), // anchored at the end
            ("/index.html", "/x/index.html", false), // anchored at the start
            ("/img/?.png", "/img/a.png", true),
            ("/img/?.png", "/img/ab.png", false),
            ("/img/?.png", "/img/.png", false),
            ("/v?/*", "/v1/users", true),
            ("/v?/*", "/v10/users", false),
            ("*.jpg", "/pics/cat.jpg", true),
            ("*.jpg", "/pics/cat.jpeg", false),
            ("/a*b*c", "/aXbYc", true),
            ("/a*b*c", "/aXbYcZ", false),
            ("/a*b*c", "/abc", true),
            ("/a*a*a*b", "/aaaaaaaaaaaaaaaaaaaaaaaaaaaac", false),
            ("/**", "/x", true),
            ("/*?", "/", false),
            ("/*?", "/x", true),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(
                path_matches(pattern, path),
                expected,
                "pattern {pattern:?} against path {path:?}"
            );
        }
    }

    #[test]
    fn pattern_validation_rejects_what_the_alb_rejects() {
        for good in ["/api/*", "*", "/a-b_c.d$e~f'g@h:i+j&k?", "/\"q\""] {
            assert!(validate_pattern(good).is_ok(), "{good:?}");
        }
        let long = format!("/{}", "a".repeat(128));
        for bad in ["", "/a b", "/a%20b", "/a#b", "/é", long.as_str()] {
            assert!(validate_pattern(bad).is_err(), "{bad:?}");
        }
    }

    fn table(rules: &[Rule]) -> RuleTable<String> {
        RuleTable::compile(rules, &Forward::to("default"), |name| Ok(name.to_owned())).unwrap()
    }

    fn route(table: &RuleTable<String>, path: &str) -> String {
        table.select(path).choose().clone()
    }

    #[test]
    fn rules_are_evaluated_by_priority_then_default() {
        // Deliberately out of order: priority decides, not position.
        let table = table(&[
            Rule::forward(20, ["/api/*"], "api"),
            Rule::forward(10, ["/api/admin/*"], "admin"),
            Rule::forward(30, ["/static/*", "*.css"], "static"),
        ]);
        let cases = [
            ("/api/admin/users", "admin"),
            ("/api/files", "api"),
            ("/static/app.js", "static"),
            ("/theme/site.css", "static"),
            ("/", "default"),
            ("/API/files", "default"),
            ("/apix", "default"),
        ];
        for (path, expected) in cases {
            assert_eq!(route(&table, path), expected, "path {path}");
        }
    }

    #[test]
    fn compile_rejects_invalid_rules() {
        let resolve = |name: &str| {
            if name == "missing" {
                Err(BalancerError::UnknownTargetGroup {
                    name: name.to_owned(),
                })
            } else {
                Ok(name.to_owned())
            }
        };
        let cases: Vec<(Vec<Rule>, Forward)> = vec![
            (
                vec![Rule::forward(1, ["/a"], "x"), Rule::forward(1, ["/b"], "y")],
                Forward::to("d"),
            ),
            (vec![Rule::forward(0, ["/a"], "x")], Forward::to("d")),
            (vec![Rule::forward(50_001, ["/a"], "x")], Forward::to("d")),
            (
                vec![Rule::forward(1, Vec::<String>::new(), "x")],
                Forward::to("d"),
            ),
            (vec![Rule::forward(1, ["/a b"], "x")], Forward::to("d")),
            (vec![Rule::forward(1, ["/a"], "missing")], Forward::to("d")),
            (vec![], Forward::to("missing")),
            (vec![], Forward::weighted([("a", 0), ("b", 0)])),
            (vec![], Forward::weighted([("a", 1000)])),
            (vec![], Forward::weighted([("a", 1), ("missing", 0)])),
        ];
        for (rules, default) in cases {
            assert!(
                RuleTable::compile(&rules, &default, resolve).is_err(),
                "{rules:?} / {default:?} should be rejected"
            );
        }
    }

    #[test]
    fn weighted_forward_splits_by_weight() {
        let table = RuleTable::compile(
            &[],
            &Forward::weighted([("blue", 10), ("idle", 0), ("green", 20)]),
            |name| Ok(name.to_owned()),
        )
        .unwrap();
        let action = table.select("/");
        // Rolls 0..10 go to blue, 10..30 to green: 1/3 and 2/3 (S5.29); weight 0 gets none.
        let picks: Vec<&str> = (0..30)
            .map(|roll| action.choose_with(roll).as_str())
            .collect();
        assert_eq!(picks.iter().filter(|&&g| g == "blue").count(), 10);
        assert_eq!(picks.iter().filter(|&&g| g == "green").count(), 20);
        assert_eq!(picks[9], "blue");
        assert_eq!(picks[10], "green");
        // The random choice only ever returns groups with a positive weight.
        for _ in 0..200 {
            assert_ne!(action.choose(), "idle");
        }
    }

    fn weights(action: &Forward) -> Vec<(&str, u32)> {
        action
            .target_groups
            .iter()
            .map(|g| (g.name.as_str(), g.weight))
            .collect()
    }

    fn listener() -> ListenerRules {
        ListenerRules {
            rules: vec![
                Rule::forward(20, ["/api/*"], "api-blue"),
                Rule::forward(10, ["/admin/*"], "admin"),
            ],
            default: Forward::to("web-blue"),
        }
    }

    #[test]
    fn set_weights_changes_one_rule_and_leaves_the_others() {
        let tg = |name: &str, weight| WeightedTargetGroup {
            name: name.to_owned(),
            weight,
        };
        /// The rule changed, the weights asked, the rule's action expected after.
        type Case = (RuleRef, Vec<WeightedTargetGroup>, Vec<(&'static str, u32)>);
        let cases: Vec<Case> = vec![
            // Green joins with weight 0: present, receives nothing yet.
            (
                RuleRef::Priority(20),
                vec![tg("api-green", 0)],
                vec![("api-blue", 1), ("api-green", 0)],
            ),
            // A canary split on the default rule, both named.
            (
                RuleRef::Default,
                vec![tg("web-blue", 950), tg("web-green", 50)],
                vec![("web-blue", 950), ("web-green", 50)],
            ),
            // Only one group named: the other keeps its weight.
            (
                RuleRef::Default,
                vec![tg("web-blue", 0)],
                vec![("web-blue", 0)],
            ),
        ];
        for (which, asked, expected) in cases {
            let before = listener();
            let mut after = before.clone();
            after.set_weights(which, &asked).unwrap();
            for ((rule, action), (rule_before, action_before)) in
                after.actions().into_iter().zip(before.actions())
            {
                assert_eq!(rule, rule_before);
                if rule == which {
                    assert_eq!(weights(action), expected, "{which} after {asked:?}");
                } else {
                    assert_eq!(action, action_before, "{rule} must not change");
                }
            }
        }
    }

    #[test]
    fn set_weights_on_a_missing_rule_is_an_error_and_bad_weights_fail_to_compile() {
        let mut rules = listener();
        assert!(matches!(
            rules.set_weights(RuleRef::Priority(99), &[]),
            Err(BalancerError::UnknownRule {
                rule: RuleRef::Priority(99)
            })
        ));
        assert_eq!(
            rules,
            listener(),
            "a refused change leaves the rules as they were"
        );
        let resolve = |name: &str| Ok::<_, BalancerError>(name.to_owned());
        for (name, weight) in [("web-blue", 0), ("web-blue", 1000)] {
            let mut changed = listener();
            changed
                .set_weights(
                    RuleRef::Default,
                    &[WeightedTargetGroup {
                        name: name.to_owned(),
                        weight,
                    }],
                )
                .unwrap();
            assert!(
                changed.compile(resolve).is_err(),
                "{name}={weight} compiles"
            );
        }
    }

    #[test]
    fn user_of_finds_the_first_rule_naming_a_group_even_at_weight_zero() {
        let mut rules = listener();
        rules
            .set_weights(
                RuleRef::Default,
                &[WeightedTargetGroup {
                    name: "web-green".to_owned(),
                    weight: 0,
                }],
            )
            .unwrap();
        let cases = [
            ("admin", Some(RuleRef::Priority(10))),
            ("api-blue", Some(RuleRef::Priority(20))),
            ("web-blue", Some(RuleRef::Default)),
            ("web-green", Some(RuleRef::Default)),
            ("unused", None),
        ];
        for (group, expected) in cases {
            assert_eq!(rules.user_of(group), expected, "{group}");
        }
    }
}
