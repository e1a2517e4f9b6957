//! Which rules a request has to try, by its tool name.
//!
//! A rule whose `tools` are plain names, or whose condition requires
//! `tool_name == "x"` / `tool_name in [...]` at its top level, can only match
//! those tools: it is filed under each name. Every other enabled rule applies
//! to all tools. A request tries its tool's rules merged, in file order, with
//! the rules that apply to all, so a policy of 10,000 rules pinned to tools
//! costs a request about what a policy of 10 does.

use std::collections::HashMap;

use super::{Matcher, Rule};

#[derive(Debug, Clone, Default)]
pub struct RuleIndex {
    /// Tool name -> positions (in `Policy::rules`) of the rules pinned to it, ascending.
    by_tool: HashMap<String, Vec<u32>>,
    /// Positions of the enabled rules that are not pinned, ascending.
    unpinned: Vec<u32>,
}

impl RuleIndex {
    pub fn build(rules: &[Rule]) -> RuleIndex {
        let mut index = RuleIndex::default();
        for (at, rule) in rules.iter().enumerate() {
            if !rule.enabled {
                continue;
            }
            let at = at as u32;
            match rule.pinned_names() {
                Some(names) => {
                    for name in names {
                        let list = index.by_tool.entry(name).or_default();
                        // A name may be listed twice by one rule; file it once.
                        if list.last() != Some(&at) {
                            list.push(at);
                        }
                    }
                }
                None => index.unpinned.push(at),
            }
        }
        index
    }

    /// The positions of the rules to try for `tool`, in file order.
    pub fn candidates<'a>(&'a self, tool: &str) -> impl Iterator<Item = u32> + 'a {
        let pinned: &[u32] = self.by_tool.get(tool).map_or(&[], Vec::as_slice);
        Merge {
            a: pinned,
            b: &self.unpinned,
        }
    }

    /// Whether the rule at `at` was filed by name (its tools need no further check).
    pub fn is_unpinned(&self, at: u32) -> bool {
        self.unpinned.binary_search(&at).is_ok()
    }
}

/// Two ascending lists merged into one ascending sequence.
struct Merge<'a> {
    a: &'a [u32],
    b: &'a [u32],
}

impl Iterator for Merge<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let take_a = match (self.a.first(), self.b.first()) {
            (Some(x), Some(y)) => x < y,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let side = if take_a { &mut self.a } else { &mut self.b };
        let (first, rest) = side.split_first()?;
        *side = rest;
        Some(*first)
    }
}

impl Rule {
    /// The tool names this rule can match, if it names them exactly.
    fn pinned_names(&self) -> Option<Vec<String>> {
        let from_tools = self.literal_tools();
        let from_condition = match &self.matcher {
            Matcher::Expr(c) => c.pinned_tools.clone(),
            _ => None,
        };
        match (from_tools, from_condition) {
            (Some(t), None) => Some(t),
            // The condition's names, kept only where the tools globs allow them.
            (_, Some(c)) => Some(c.into_iter().filter(|n| self.applies_to(n)).collect()),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_file_order() {
        let m: Vec<u32> = Merge {
            a: &[1, 4, 9],
            b: &[0, 2, 3, 10],
        }
        .collect();
        assert_eq!(m, vec![0, 1, 2, 3, 4, 9, 10]);
    }
}
