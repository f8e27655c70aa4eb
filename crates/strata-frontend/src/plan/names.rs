//! Stage names indexed for lookups in O(log n): which earlier stage a name
//! means, and whether a name is defined later (a forward reference). The
//! planner and every [`super::StageScope`] share one copy (behind an `Arc`),
//! so planning stays near-linear in the number of stages.

use std::collections::HashMap;

/// Every stage's lower-cased `AS` name by index, plus name → indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StageNames {
    by_index: Vec<Option<String>>,
    /// Indexes of the stages with each name, ascending.
    by_name: HashMap<String, Vec<usize>>,
}

impl StageNames {
    pub(crate) fn new(by_index: Vec<Option<String>>) -> StageNames {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in by_index.iter().enumerate() {
            if let Some(n) = n {
                by_name.entry(n.clone()).or_default().push(i);
            }
        }
        StageNames { by_index, by_name }
    }

    /// The name of stage `index`.
    pub(crate) fn at(&self, index: usize) -> Option<&str> {
        self.by_index.get(index).and_then(|n| n.as_deref())
    }

    /// The last stage before `index` named `lower`.
    pub(crate) fn before(&self, lower: &str, index: usize) -> Option<usize> {
        let v = self.by_name.get(lower)?;
        let n = v.partition_point(|&i| i < index);
        n.checked_sub(1).map(|k| v[k])
    }

    /// Whether a stage after `index` is named `lower`.
    pub(crate) fn after(&self, lower: &str, index: usize) -> bool {
        self.by_name
            .get(lower)
            .and_then(|v| v.last())
            .is_some_and(|&i| i > index)
    }

    /// The named stages' names, in order (for messages and suggestions).
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.by_index.iter().filter_map(|n| n.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::StageNames;

    #[test]
    fn before_and_after() {
        let n = StageNames::new(vec![
            Some("a".into()),
            None,
            Some("a".into()),
            Some("b".into()),
        ]);
        assert_eq!(n.before("a", 0), None);
        assert_eq!(n.before("a", 1), Some(0));
        assert_eq!(n.before("a", 3), Some(2));
        assert!(n.after("a", 1));
        assert!(!n.after("a", 2));
        assert_eq!(n.at(3), Some("b"));
        assert_eq!(n.names().collect::<Vec<_>>(), ["a", "a", "b"]);
    }
}
