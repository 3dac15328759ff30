//! Labelling in the browser (`stancekit label`, run from
//! [`crate::commands::label`]): a page on localhost shows one sentence at a
//! time with its neighbours, every target's description, the rules and the
//! model's guess; each decision is appended to a labels file that `data
//! check` and `train --train` read as they are.
//!
//! - [`items`]: the sentences, from a suggestions file or `predict`'s inputs;
//! - [`store`]: the append-only labels file (synced per decision, undo, lock);
//! - [`session`]: the queue over the store (current sentence, skip, undo, counts);
//! - [`server`]: the page and the HTTP API.

pub mod items;
pub mod server;
pub mod session;
pub mod store;

pub use items::{read_items, targets_of};
pub use server::{serve, Meta};
pub use session::{Item, Refusal, Scorer, Session, Stats, Target, View};
pub use store::LabelStore;

/// The page's reminder of the rules when no rules file is given: for the
/// labels `favor`, `against` and `none`, the core of the project's annotation
/// guidelines; for other labels, what they are and how to show the user's own.
pub fn default_rules(schema: &crate::data::Schema) -> String {
    let mut labels: Vec<&str> = schema.labels.iter().map(String::as_str).collect();
    labels.sort_unstable();
    if labels == ["against", "favor", "none"] {
        return DEFAULT_RULES.to_string();
    }
    let neutral = match schema.neutral.as_ref().map(|n| (n.0.len(), n.names())) {
        Some((1, names)) => format!(" ({names} takes no stance)"),
        Some((2.., names)) => format!(" ({names} take no stance)"),
        _ => String::new(),
    };
    format!(
        "Judge the sentence on its own: the neighbours help you read it, they do not decide its label.\n\
         Labels: {}{neutral}.\n\
         Show your own guidelines here with --rules FILE.",
        schema.label_list()
    )
}

/// [`default_rules`] for the project's labels: the core of its annotation
/// guidelines (`ANNOTATION.md`).
pub const DEFAULT_RULES: &str = "\
Judge the sentence on its own: the neighbours help you read it, they do not decide its label.
favor: the sentence supports the target, argues for it, or presents it as desirable, necessary or achievable.
against: it opposes the target, argues against it, or presents it as undesirable, unrealistic or off the table.
none: it takes no position on the target: it is about something else, or mentions the target only as neutral \
fact (a date, a meeting, who attended).
A reported position counts (\"X said Y is unrealistic\" conveys that Y is unrealistic). Implicit stance counts \
when a careful reader would infer it from the sentence alone. Two positions on one target: the one that \
dominates; if neither does, none.";

#[cfg(test)]
mod tests {
    /// The project's guidelines speak of favor, against and none: another
    /// label set gets its own labels named instead.
    #[test]
    fn the_default_rules_name_the_labels_in_use() {
        let mut schema = crate::data::tests::schema();
        assert_eq!(super::default_rules(&schema), super::DEFAULT_RULES);
        schema.labels = ["Support", "Oppose", "No Stance"].map(String::from).to_vec();
        schema.neutral = Some(crate::data::Neutral::one("No Stance"));
        let rules = super::default_rules(&schema);
        assert!(rules.contains("Labels: Support, Oppose, No Stance ('No Stance' takes no stance)."), "{rules}");
        assert!(!rules.contains("favor") && rules.contains("--rules FILE"), "{rules}");
    }
}
