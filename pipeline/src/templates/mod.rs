//! Online template mining: each line gets the id of the template it belongs to on arrival.

pub mod drain;
pub mod index;
pub mod loghub;
pub mod mask;
mod similarity;
mod tree;

pub use drain::{Cluster, ClusterId, DrainConfig, Miner, Placement};
pub use index::{TemplateIndex, TemplateTag, template_key};
