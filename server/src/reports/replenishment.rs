//! Replenishment (issue 9, scope 2): a reorder rule per item and site, and the suggestions it gives.
//!
//! - A rule says when to reorder (`reorder_point`) and how much: a fixed `reorder_qty`, or up to a `max` level
//!   (min/max). Exactly one of the two.
//! - *Available* stock of an item at a site is the sum of its stock rows over every location and lot of the site,
//!   the dock included (received goods are in the building and will not be ordered again); negative rows count as
//!   they are, since the book says so.
//! - An item is *below its point* when available < `reorder_point`. Its suggestion orders `reorder_qty`, or
//!   `max - available` with a min/max rule.
//! - The notice the office sees (the replenishment page's banner, and a webhook later) is computed on read from
//!   current stock: pushes pay nothing for it, and it disappears by itself once stock is back above the point.
//!   [`suggestions`] is the one function callers (API, dashboard, webhooks) use.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::store::{StockFilter, Store, StoreError};

/// When and how much to reorder one item at one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReorderRule {
    /// The site.
    pub site: String,
    /// The item (GTIN-14).
    pub gtin: String,
    /// Reorder when available stock falls below this.
    pub reorder_point: u64,
    /// Order this many units (fixed quantity); exclusive with `max`.
    #[serde(default)]
    pub reorder_qty: Option<u64>,
    /// Order up to this level (min/max); exclusive with `reorder_qty`, at least `reorder_point`.
    #[serde(default)]
    pub max: Option<u64>,
}

/// Why a rule is refused; the string names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong.
    pub message: &'static str,
}

impl ReorderRule {
    /// Checks the rule's own consistency (exactly one of `reorder_qty` and `max`, sensible values).
    pub fn validate(&self) -> Result<(), RuleError> {
        let err = |field, message| Err(RuleError { field, message });
        match (self.reorder_qty, self.max) {
            (None, None) | (Some(_), Some(_)) => {
                err("reorder_qty", "give exactly one of reorder_qty and max")
            }
            (Some(0), None) => err("reorder_qty", "must be at least 1"),
            (None, Some(max)) if max < self.reorder_point || max == 0 => {
                err("max", "must be at least reorder_point and at least 1")
            }
            _ if self.reorder_point > dockhand_protocol::sync::MAX_QTY
                || self.reorder_qty.or(self.max).unwrap_or(0)
                    > dockhand_protocol::sync::MAX_QTY =>
            {
                err("reorder_point", "quantities must be at most 1000000000")
            }
            _ => Ok(()),
        }
    }
}

/// A purchase the office should consider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    /// The site.
    pub site: String,
    /// The item.
    pub gtin: String,
    /// Available units at the site (see the module docs).
    pub available: i64,
    /// The rule's point.
    pub reorder_point: u64,
    /// Units to order.
    pub suggested_qty: u64,
}

/// The suggestions of `rules` given available stock per `(site, gtin)`, by site then GTIN.
pub fn suggest(
    rules: &[ReorderRule],
    available: &HashMap<(String, String), i64>,
) -> Vec<Suggestion> {
    let mut out: Vec<Suggestion> = rules
        .iter()
        .filter_map(|r| {
            let have = available
                .get(&(r.site.clone(), r.gtin.clone()))
                .copied()
                .unwrap_or(0);
            if have >= i64::try_from(r.reorder_point).unwrap_or(i64::MAX) {
                return None;
            }
            let qty = match (r.reorder_qty, r.max) {
                (Some(q), _) => q,
                // Below the point, which is at most max: max - have is positive.
                (None, Some(max)) => {
                    u64::try_from(i128::from(max) - i128::from(have)).unwrap_or(u64::MAX)
                }
                (None, None) => return None,
            };
            Some(Suggestion {
                site: r.site.clone(),
                gtin: r.gtin.clone(),
                available: have,
                reorder_point: r.reorder_point,
                suggested_qty: qty,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.site, &a.gtin).cmp(&(&b.site, &b.gtin)));
    out
}

/// The current suggestions of `site` (every site when `None`): the rules, then the stock of the items they name.
/// What the API, the dashboard and the `replenishment.suggested` webhook read.
pub fn suggestions(store: &dyn Store, site: Option<&str>) -> Result<Vec<Suggestion>, StoreError> {
    let rules = store.reorder_rules(site)?;
    let mut available: HashMap<(String, String), i64> = HashMap::new();
    for rule in &rules {
        let key = (rule.site.clone(), rule.gtin.clone());
        if available.contains_key(&key) {
            continue;
        }
        let filter = StockFilter {
            site: Some(rule.site.clone()),
            gtin: Some(rule.gtin.clone()),
            ..StockFilter::default()
        };
        let sum = store.stock(&filter)?.iter().map(|r| r.qty).sum();
        available.insert(key, sum);
    }
    Ok(suggest(&rules, &available))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(point: u64, qty: Option<u64>, max: Option<u64>) -> ReorderRule {
        ReorderRule {
            site: "WH1".into(),
            gtin: "09506000134352".into(),
            reorder_point: point,
            reorder_qty: qty,
            max,
        }
    }

    #[test]
    fn validate_table() {
        let cases = [
            (rule(10, Some(50), None), None),
            (rule(10, None, Some(40)), None),
            (rule(10, None, Some(10)), None),
            (rule(0, Some(1), None), None),
            (rule(10, None, None), Some("reorder_qty")),
            (rule(10, Some(5), Some(40)), Some("reorder_qty")),
            (rule(10, Some(0), None), Some("reorder_qty")),
            (rule(10, None, Some(9)), Some("max")),
            (rule(0, None, Some(0)), Some("max")),
            (rule(2_000_000_000, Some(1), None), Some("reorder_point")),
        ];
        for (r, want) in cases {
            assert_eq!(r.validate().err().map(|e| e.field), want, "{r:?}");
        }
    }

    #[test]
    fn suggest_table() {
        let key = ("WH1".to_string(), "09506000134352".to_string());
        // (rule, available, suggested qty or none)
        let cases = [
            (rule(10, Some(50), None), Some(9), Some(50)),
            (rule(10, Some(50), None), Some(10), None),
            (rule(10, Some(50), None), None, Some(50)),
            (rule(10, None, Some(40)), Some(3), Some(37)),
            (rule(10, None, Some(40)), Some(-5), Some(45)),
            (rule(0, Some(5), None), Some(0), None),
        ];
        for (r, have, want) in cases {
            let available: HashMap<_, _> = have.map(|h| (key.clone(), h)).into_iter().collect();
            let got = suggest(std::slice::from_ref(&r), &available);
            assert_eq!(got.first().map(|s| s.suggested_qty), want, "{r:?} {have:?}");
        }
    }
}
