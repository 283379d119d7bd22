//! An online Drain-style template miner (He et al., ICWS 2017): a fixed-depth tree routes a
//! message by its token count and first tokens to a few candidate clusters; it joins the
//! most similar one if similar enough, which then generalizes (differing tokens become
//! `<*>`), else it starts a new cluster. One pass; each line's cluster is known at once.
//!
//! Changes from the paper, all on by default: messages are masked before routing and
//! matching (`mask::mask_quoted`: quoted values, HTTP methods kept; `mask::default_masks`:
//! URLs, paths, dotted names, date words;
//! `mask::mask_numbers`: numbers, hex and uuids inside tokens, booleans) and runs of
//! parameters of one shape count as one token (lists of any length); similarity is the share
//! of equal words among the message's unmasked tokens; once a cluster has absorbed
//! `settle_after` lines its remaining words are settled: a line differing in one of them is
//! another event, however similar otherwise ("client SPP." vs "client WindowsUpdateAgent.";
//! bracketed words and `key=value` tokens hold values and never settle);
//! the clusters are capped (least recently matched evicted, counted).
//!
//! `DrainConfig::classic` turns all of that off and is Drain exactly as published (and as the
//! `drain3` package implements it), to check the core algorithm against the published numbers.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;

use super::mask::{WILDCARD, default_masks, fold_values, mask_numbers, mask_quoted};
use super::similarity::{self, Fit};
pub use super::tree::ClusterId;
use super::tree::{PrefixTree, Routing};

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
    /// Quoted values become `<*>`, HTTP methods kept (`mask::mask_quoted`), first.
    pub mask_quoted: bool,
    /// Regexes whose matches become `<*>` before tokenizing (Loghub's per-set `regex`).
    pub masks: Vec<Regex>,
    /// Mask the numeric parts inside tokens (`mask::mask_numbers`).
    pub mask_numbers: bool,
    /// A cluster that has absorbed this many lines keeps its remaining words: a line that
    /// differs in one of them is another event.
    pub settle_after: u64,
    /// Runs of parameters of one shape (`blk_<*> blk_-<*> blk_<*>`) count as one token, so
    /// that lists of any length are one event.
    pub collapse_lists: bool,
    /// Published Drain's similarity and routing (see `classic`).
    pub classic: bool,
}

impl DrainConfig {
    /// Drain as published, with a set's masks, similarity threshold and depth: similarity is
    /// the share of a template's tokens equal to the message's, its parameters counting as
    /// unequal; ties go to the template with more parameters; the tree descends `depth - 3`
    /// tokens (never a message's last) and files tokens with a digit under `<*>`. No
    /// number masking, settling, list collapsing or cluster cap.
    pub fn classic(masks: Vec<Regex>, sim_threshold: f64, depth: usize) -> Self {
        DrainConfig {
            depth,
            sim_threshold,
            max_children: 100,
            max_clusters: usize::MAX,
            mask_quoted: false,
            masks,
            mask_numbers: false,
            settle_after: u64::MAX,
            collapse_lists: false,
            classic: true,
        }
    }
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            depth: 4,
            sim_threshold: 0.75,
            max_children: 100,
            max_clusters: 5_000,
            mask_quoted: true,
            masks: default_masks(),
            mask_numbers: true,
            settle_after: 100,
            collapse_lists: true,
            classic: false,
        }
    }
}

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
    tree: PrefixTree,
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
            tree: PrefixTree::default(),
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

    /// The message as the miner sees it before splitting: masks applied.
    pub fn mask<'a>(&self, content: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(content.trim());
        if self.config.mask_quoted
            && let Cow::Owned(masked) = mask_quoted(&text)
        {
            text = Cow::Owned(masked);
        }
        for re in &self.config.masks {
            if re.is_match(&text) {
                text = Cow::Owned(re.replace_all(&text, WILDCARD).into_owned());
            }
        }
        if self.config.mask_numbers {
            if let Cow::Owned(masked) = mask_numbers(&text) {
                text = Cow::Owned(masked);
            }
            if let Cow::Owned(folded) = fold_values(&text) {
                text = Cow::Owned(folded);
            }
        }
        text
    }

    /// A masked message's tokens: split on whitespace, runs of parameters of one shape
    /// collapsed. Borrowed: a line that joins a cluster allocates nothing for its tokens.
    pub fn split<'t>(&self, masked: &'t str) -> Vec<&'t str> {
        let mut prev: Option<&str> = None;
        masked
            .split_whitespace()
            .filter(|&t| {
                if !self.config.collapse_lists || !t.contains(WILDCARD) {
                    prev = None;
                    return true;
                }
                let repeat = prev.is_some_and(|p| same_shape(p, t));
                prev = Some(t);
                !repeat
            })
            .collect()
    }

    /// The cluster a message would join today, without changing anything.
    pub fn find(&self, content: &str) -> Option<ClusterId> {
        let masked = self.mask(content);
        let tokens = self.split(&masked);
        self.best_match(self.tree.leaf(&tokens, self.routing()), &tokens)
    }

    pub fn add(&mut self, content: &str) -> Placement {
        let masked = self.mask(content);
        let tokens = self.split(&masked);
        self.add_tokens(&tokens)
    }

    pub fn add_tokens(&mut self, tokens: &[&str]) -> Placement {
        self.clock += 1;
        let best = self.best_match(self.tree.leaf(tokens, self.routing()), tokens);
        match best {
            Some(id) => {
                let clock = self.clock;
                let wildcard = Arc::clone(&self.wildcard);
                let c = self.clusters.get_mut(&id).expect("leaf ids are live");
                let mut changed = false;
                for (t, m) in c.tokens.iter_mut().zip(tokens) {
                    if **t != **m && **t != *WILDCARD {
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
                let tokens: Vec<Arc<str>> = tokens
                    .iter()
                    .map(|&t| {
                        if t == WILDCARD {
                            Arc::clone(&self.wildcard)
                        } else {
                            Arc::from(t)
                        }
                    })
                    .collect();
                self.tree.insert(&tokens, id, self.routing(), &self.wildcard);
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

    fn routing(&self) -> Routing {
        // Classic Drain counts the root and the length layer in its depth, and its leaf too.
        let prefix = if self.config.classic {
            self.config.depth.saturating_sub(3)
        } else {
            self.config.depth.saturating_sub(2)
        };
        Routing {
            prefix,
            max_children: self.config.max_children,
            classic: self.config.classic,
        }
    }

    /// The most similar template in the leaf, if similar enough; ties go to the template
    /// with more parameters.
    fn best_match(&self, leaf: &[ClusterId], tokens: &[&str]) -> Option<ClusterId> {
        let mut best: Option<(Fit, ClusterId)> = None;
        for id in leaf {
            let Some(c) = self.clusters.get(id) else { continue };
            if c.tokens.len() != tokens.len() {
                continue;
            }
            let fit = if self.config.classic {
                Some(similarity::classic(&c.tokens, tokens))
            } else {
                similarity::words(&c.tokens, tokens, c.size >= self.config.settle_after)
            };
            if let Some(f) = fit
                && best.is_none_or(|(b, _)| f.sim > b.sim || (f.sim == b.sim && f.params > b.params))
            {
                best = Some((f, *id));
            }
        }
        best.filter(|(f, _)| f.sim >= self.config.sim_threshold)
            .map(|(_, id)| id)
    }

    fn evict_one(&mut self) {
        let Some(oldest) = self.clusters.values().min_by_key(|c| c.last_used).map(|c| c.id) else {
            return;
        };
        self.clusters.remove(&oldest);
        self.evicted += 1;
        // Leaves keep the id until they are next visited; drop it everywhere now.
        self.tree.remove(oldest);
    }
}

/// Equal but for minus signs: `blk_<*>` and `blk_-<*>` are one shape.
fn same_shape(a: &str, b: &str) -> bool {
    a.bytes().filter(|&c| c != b'-').eq(b.bytes().filter(|&c| c != b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mine(miner: &mut Miner, line: &str) -> ClusterId {
        miner.add(line).cluster
    }

    #[test]
    fn variants_of_one_event_share_a_cluster_that_generalizes() {
        let mut m = Miner::new(DrainConfig::default());
        let a = m.add("Received block blk_1 of size 67108864 from /10.0.0.1");
        let b = m.add("Received block blk_-9 of size 512 from /10.0.0.2");
        assert!(a.new && !b.new);
        assert_eq!(a.cluster, b.cluster);
        assert_eq!(
            m.cluster(a.cluster).map(Cluster::template).as_deref(),
            Some("Received block blk_<*> of size <*> from /<*>")
        );
        let other = mine(&mut m, "Deleting block blk_1 file /data/x");
        assert_ne!(other, a.cluster);
    }

    #[test]
    fn settled_words_split_late_variants_but_young_clusters_generalize() {
        let mut m = Miner::new(DrainConfig::default());
        // Two values early: a variable.
        let first = mine(&mut m, "session opened for user cyrus by uid 0");
        assert_eq!(mine(&mut m, "session opened for user news by uid 0"), first);
        // One value for 100 lines, then another: a different event.
        let agent = mine(&mut m, "Session 1 initialized by client WindowsUpdateAgent.");
        for i in 0..100 {
            assert_eq!(
                mine(
                    &mut m,
                    &format!("Session {i} initialized by client WindowsUpdateAgent.")
                ),
                agent
            );
        }
        let spp = m.add("Session 7 initialized by client SPP.");
        assert!(spp.new, "a settled word that differs starts another event");
        assert_eq!(mine(&mut m, "Session 8 initialized by client SPP."), spp.cluster);
        // Parameters still vary freely in a settled cluster.
        assert_eq!(
            mine(&mut m, "Session 99999 initialized by client WindowsUpdateAgent."),
            agent
        );
    }

    #[test]
    fn a_value_in_the_first_token_routes_as_a_parameter() {
        let mut m = Miner::new(DrainConfig::default());
        let a = mine(
            &mut m,
            "proxy.example.edu.hk:5070 open through proxy proxy.example.edu.hk:5070 HTTPS",
        );
        let b = mine(
            &mut m,
            "github.com:443 open through proxy proxy.example.edu.hk:5070 HTTPS",
        );
        assert_eq!(a, b, "one event whichever host comes first");
        let c = mine(
            &mut m,
            "api.github.com:443 close, 120 bytes (1.2 KB) sent, 80 bytes received, lifetime 00:01",
        );
        let d = mine(
            &mut m,
            "github.com:443 close, 0 bytes sent, 0 bytes received, lifetime <1 sec",
        );
        assert_eq!(
            c, d,
            "a quantity annotation and a value's unit do not make another event"
        );
        assert_ne!(a, c);
    }

    #[test]
    fn lists_of_parameters_of_any_length_are_one_event() {
        let mut m = Miner::new(DrainConfig::default());
        let a = mine(&mut m, "ask 10.0.0.1:50010 to delete blk_1 blk_-2 blk_3");
        let b = mine(&mut m, "ask 10.0.0.2:50010 to delete blk_4");
        assert_eq!(a, b);
        assert_eq!(
            m.cluster(a).map(Cluster::template).as_deref(),
            Some("ask <*> to delete blk_<*>")
        );
    }

    #[test]
    fn clusters_are_capped_least_recently_used_first() {
        let mut m = Miner::new(DrainConfig {
            max_clusters: 2,
            ..DrainConfig::default()
        });
        let a = mine(&mut m, "alpha happened");
        let b = mine(&mut m, "beta started now");
        assert_eq!(mine(&mut m, "alpha happened"), a);
        let c = mine(&mut m, "gamma stopped here again");
        assert_eq!(m.len(), 2);
        assert_eq!(m.evicted, 1);
        assert!(m.cluster(b).is_none() && m.cluster(a).is_some() && m.cluster(c).is_some());
        assert!(m.add("beta started now").new, "an evicted template starts over");
    }
}
