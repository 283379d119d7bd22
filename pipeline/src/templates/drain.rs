//! An online Drain-style template miner (He et al., ICWS 2017): a fixed-depth tree routes a
//! message by its token count and first tokens to a few candidate clusters; it joins the
//! most similar one if similar enough, which then generalizes (differing tokens become
//! `<*>`), else it starts a new cluster. One pass; each line's cluster is known at once.
//!
//! Changes from the paper, all on by default: messages are masked before routing and
//! matching (`mask::default_masks`: quoted values, URLs, paths, dotted names, date words;
//! `mask::mask_numbers`: numbers, hex and uuids inside tokens); similarity is the share of
//! equal words among the message's unmasked tokens; the clusters are capped (least
//! recently matched evicted, counted).

use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;

use super::mask::{WILDCARD, default_masks, mask_numbers};

#[derive(Debug, Clone)]
pub struct DrainConfig {
    /// Depth of the leaves counting the root and the length layer: `depth - 2` leading
    /// tokens route a message.
    pub depth: usize,
    /// A message joins a cluster when the share of equal tokens is at least this.
    pub sim_threshold: f64,
    /// Children per tree node; further distinct tokens share a `<*>` child.
    pub max_children: usize,
    /// Clusters kept; the least recently matched is evicted beyond it.
    pub max_clusters: usize,
    /// Regexes whose matches become `<*>` before tokenizing (Loghub's per-set `regex`).
    pub masks: Vec<Regex>,
    /// Mask the numeric parts inside tokens (`mask::mask_numbers`).
    pub mask_numbers: bool,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            depth: 4,
            sim_threshold: 0.5,
            max_children: 100,
            max_clusters: 5_000,
            masks: default_masks(),
            mask_numbers: true,
        }
    }
}

pub type ClusterId = u64;

#[derive(Debug, Clone)]
pub struct Cluster {
    pub id: ClusterId,
    pub tokens: Vec<Arc<str>>,
    pub size: u64,
    last_used: u64,
}

impl Cluster {
    pub fn template(&self) -> String {
        self.tokens.iter().map(|t| &**t).collect::<Vec<_>>().join(" ")
    }
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Arc<str>, Node>,
    clusters: Vec<ClusterId>,
}

/// What `Miner::add` did with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub cluster: ClusterId,
    /// The line started a new cluster.
    pub new: bool,
    /// The cluster's template changed (generalized) with this line.
    pub changed: bool,
}

#[derive(Debug)]
pub struct Miner {
    config: DrainConfig,
    root: HashMap<usize, Node>,
    clusters: HashMap<ClusterId, Cluster>,
    next_id: ClusterId,
    clock: u64,
    wildcard: Arc<str>,
    pub evicted: u64,
}

impl Miner {
    pub fn new(config: DrainConfig) -> Self {
        Miner {
            config,
            root: HashMap::new(),
            clusters: HashMap::new(),
            next_id: 1,
            clock: 0,
            wildcard: Arc::from(WILDCARD),
            evicted: 0,
        }
    }

    pub fn cluster(&self, id: ClusterId) -> Option<&Cluster> {
        self.clusters.get(&id)
    }

    pub fn clusters(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.values()
    }

    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    /// The message as the miner sees it: masks applied, split on whitespace.
    pub fn tokens(&self, content: &str) -> Vec<Arc<str>> {
        let mut text = std::borrow::Cow::Borrowed(content.trim());
        for re in &self.config.masks {
            if re.is_match(&text) {
                text = std::borrow::Cow::Owned(re.replace_all(&text, WILDCARD).into_owned());
            }
        }
        if self.config.mask_numbers
            && let std::borrow::Cow::Owned(masked) = mask_numbers(&text)
        {
            text = std::borrow::Cow::Owned(masked);
        }
        text.split_whitespace()
            .map(|t| {
                if t == WILDCARD {
                    Arc::clone(&self.wildcard)
                } else {
                    Arc::from(t)
                }
            })
            .collect()
    }

    pub fn add(&mut self, content: &str) -> Placement {
        let tokens = self.tokens(content);
        self.add_tokens(tokens)
    }

    pub fn add_tokens(&mut self, tokens: Vec<Arc<str>>) -> Placement {
        self.clock += 1;
        let best = self.best_match(self.leaf(&tokens), &tokens);
        match best {
            Some(id) => {
                let clock = self.clock;
                let wildcard = Arc::clone(&self.wildcard);
                let c = self.clusters.get_mut(&id).expect("leaf ids are live");
                let mut changed = false;
                for (t, m) in c.tokens.iter_mut().zip(&tokens) {
                    if t != m && **t != *WILDCARD {
                        *t = Arc::clone(&wildcard);
                        changed = true;
                    }
                }
                c.size += 1;
                c.last_used = clock;
                Placement {
                    cluster: id,
                    new: false,
                    changed,
                }
            }
            None => {
                if self.clusters.len() >= self.config.max_clusters {
                    self.evict_one();
                }
                let id = self.next_id;
                self.next_id += 1;
                self.insert_into_tree(&tokens, id);
                self.clusters.insert(
                    id,
                    Cluster {
                        id,
                        tokens,
                        size: 1,
                        last_used: self.clock,
                    },
                );
                Placement {
                    cluster: id,
                    new: true,
                    changed: false,
                }
            }
        }
    }

    /// The cluster ids in the leaf a message routes to.
    fn leaf(&self, tokens: &[Arc<str>]) -> &[ClusterId] {
        let Some(mut node) = self.root.get(&tokens.len()) else {
            return &[];
        };
        for t in tokens.iter().take(self.prefix_len()) {
            node = match node.children.get(t).or_else(|| node.children.get(WILDCARD)) {
                Some(n) => n,
                None => return &[],
            };
        }
        &node.clusters
    }

    fn prefix_len(&self) -> usize {
        self.config.depth.saturating_sub(2)
    }

    /// Files a new cluster under its length and leading tokens; a token with no room
    /// left among its siblings goes under `<*>`.
    fn insert_into_tree(&mut self, tokens: &[Arc<str>], id: ClusterId) {
        let max_children = self.config.max_children;
        let prefix = self.prefix_len();
        let wildcard = Arc::clone(&self.wildcard);
        let mut node = self.root.entry(tokens.len()).or_default();
        for t in tokens.iter().take(prefix) {
            let room = node.children.contains_key(t) || **t == *WILDCARD || node.children.len() + 1 < max_children;
            let key = if room { Arc::clone(t) } else { Arc::clone(&wildcard) };
            node = node.children.entry(key).or_default();
        }
        node.clusters.push(id);
    }

    fn best_match(&self, leaf: &[ClusterId], tokens: &[Arc<str>]) -> Option<ClusterId> {
        let mut best: Option<(f64, usize, ClusterId)> = None;
        for id in leaf {
            let Some(c) = self.clusters.get(id) else { continue };
            if c.tokens.len() != tokens.len() {
                continue;
            }
            // Similarity over the message's words: a masked token tells nothing either way
            // (the template has a parameter there, or a word that was masked in this line).
            let (mut same, mut words, mut wild) = (0usize, 0usize, 0usize);
            for (t, m) in c.tokens.iter().zip(tokens) {
                if **m != *WILDCARD {
                    words += 1;
                    if t == m {
                        same += 1;
                    }
                }
                if **t == *WILDCARD {
                    wild += 1;
                }
            }
            let sim = if words == 0 { 1.0 } else { same as f64 / words as f64 };
            if best.is_none_or(|(s, w, _)| sim > s || (sim == s && wild > w)) {
                best = Some((sim, wild, *id));
            }
        }
        best.filter(|(s, _, _)| *s >= self.config.sim_threshold)
            .map(|(_, _, id)| id)
    }

    fn evict_one(&mut self) {
        let Some(oldest) = self.clusters.values().min_by_key(|c| c.last_used).map(|c| c.id) else {
            return;
        };
        self.clusters.remove(&oldest);
        self.evicted += 1;
        // Leaves keep the id until they are next visited; drop it everywhere now.
        for node in self.root.values_mut() {
            remove_id(node, oldest);
        }
    }
}

fn remove_id(node: &mut Node, id: ClusterId) {
    node.clusters.retain(|c| *c != id);
    for child in node.children.values_mut() {
        remove_id(child, id);
    }
}
