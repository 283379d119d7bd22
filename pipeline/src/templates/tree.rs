//! Drain's routing tree: the root's children are token counts, then one level per leading
//! token, then a leaf holding candidate clusters. A token with no room among its siblings
//! (`max_children`) goes under `<*>`, and so, in classic Drain, does every token with a digit.

use std::collections::HashMap;
use std::sync::Arc;

use super::mask::WILDCARD;

/// A cluster (template) of the miner, as its leaves hold it.
pub type ClusterId = u64;

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Arc<str>, Node>,
    clusters: Vec<ClusterId>,
}

#[derive(Debug, Default)]
pub struct PrefixTree {
    by_length: HashMap<usize, Node>,
}

/// How a tree files and finds a message.
#[derive(Debug, Clone, Copy)]
pub struct Routing {
    /// Leading tokens a message descends by (fewer for short messages, see `descents`).
    pub prefix: usize,
    pub max_children: usize,
    /// Published Drain: never descend by a message's last token, and file tokens with a
    /// digit under `<*>`.
    pub classic: bool,
}

impl Routing {
    fn descents(&self, len: usize) -> usize {
        if self.classic {
            self.prefix.min(len.saturating_sub(1))
        } else {
            self.prefix.min(len)
        }
    }
}

impl PrefixTree {
    /// The cluster ids in the leaf a message routes to.
    pub fn leaf(&self, tokens: &[&str], routing: Routing) -> &[ClusterId] {
        let Some(mut node) = self.by_length.get(&tokens.len()) else {
            return &[];
        };
        for &t in &tokens[..routing.descents(tokens.len())] {
            let exact = if !routing.classic && t.contains(WILDCARD) {
                None
            } else {
                node.children.get(t)
            };
            node = match exact.or_else(|| node.children.get(WILDCARD)) {
                Some(n) => n,
                None => return &[],
            };
        }
        &node.clusters
    }

    /// Files a new cluster under its length and leading tokens.
    pub fn insert(&mut self, tokens: &[Arc<str>], id: ClusterId, routing: Routing, wildcard: &Arc<str>) {
        let mut node = self.by_length.entry(tokens.len()).or_default();
        for t in &tokens[..routing.descents(tokens.len())] {
            let key = child_key(node, t, routing, wildcard);
            node = node.children.entry(key).or_default();
        }
        node.clusters.push(id);
    }

    pub fn remove(&mut self, id: ClusterId) {
        for node in self.by_length.values_mut() {
            remove_id(node, id);
        }
    }
}

/// The child a token is filed under (drain3's `add_seq_to_prefix_tree`, for classic).
fn child_key(node: &Node, t: &Arc<str>, routing: Routing, wildcard: &Arc<str>) -> Arc<str> {
    if node.children.contains_key(t) || **t == *WILDCARD {
        return Arc::clone(t);
    }
    let n = node.children.len();
    let room = if !routing.classic {
        // A token holding a parameter (`github.com:<*>`, `blk_<*>`) is a value: routed as one,
        // as classic Drain routes tokens with digits.
        !t.contains(WILDCARD) && n + 1 < routing.max_children
    } else if t.chars().any(char::is_numeric) {
        false
    } else if node.children.contains_key(WILDCARD) {
        n < routing.max_children
    } else {
        // The last free place goes to `<*>`.
        n + 1 < routing.max_children
    };
    if room { Arc::clone(t) } else { Arc::clone(wildcard) }
}

fn remove_id(node: &mut Node, id: ClusterId) {
    node.clusters.retain(|c| *c != id);
    for child in node.children.values_mut() {
        remove_id(child, id);
    }
}
