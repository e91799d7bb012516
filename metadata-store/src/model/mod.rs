//! Domain types parsed from the JSON Dubbo providers publish. The store keeps the raw strings;
//! these are views derived from them.

mod definition;
mod info;

pub use definition::{MethodDefinition, ServiceDefinition, TypeDefinition};
pub use info::{definition_identifier, MetadataInfo, ServiceInfo};
