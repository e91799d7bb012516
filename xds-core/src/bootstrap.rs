//! The gRPC xDS bootstrap: where the control plane is and who this node is, in the JSON format
//! gRPC clients read from `GRPC_XDS_BOOTSTRAP` (a file) or `GRPC_XDS_BOOTSTRAP_CONFIG` (inline).
//!
//! The node's identity (id, cluster, locality, metadata) can be given by the caller instead,
//! with [`Bootstrap::with_node`]: a library must not depend on process-wide settings. Unknown
//! keys are ignored, as gRPC does.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::Error;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    #[serde(rename = "xds_servers")]
    pub servers: Vec<XdsServer>,
    #[serde(default)]
    pub node: Node,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_listener_resource_name_template: Option<String>,
    /// Kept as given (TLS certificate providers are the transport's business).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub certificate_providers: Map<String, Json>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XdsServer {
    /// `host:port` (or a gRPC target such as `dns:///host:port`).
    pub server_uri: String,
    #[serde(default)]
    pub channel_creds: Vec<ChannelCreds>,
    /// `xds_v3`, `ignore_resource_deletion`, ...
    #[serde(default)]
    pub server_features: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelCreds {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Json>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Node {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub locality: Locality,
    #[serde(default)]
    pub metadata: Map<String, Json>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Locality {
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub zone: String,
    #[serde(default)]
    pub sub_zone: String,
}

impl Bootstrap {
    /// A bootstrap for one control plane, with no credentials (plaintext).
    pub fn new(server_uri: impl Into<String>, node: Node) -> Self {
        Bootstrap {
            servers: vec![XdsServer {
                server_uri: server_uri.into(),
                channel_creds: vec![ChannelCreds {
                    kind: "insecure".into(),
                    config: None,
                }],
                server_features: vec!["xds_v3".into()],
            }],
            node,
            server_listener_resource_name_template: None,
            certificate_providers: Map::new(),
        }
    }

    pub fn from_json(text: &str) -> Result<Self, Error> {
        let bootstrap: Bootstrap =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if bootstrap.servers.is_empty() {
            return Err(invalid("xds_servers is empty".into()));
        }
        if let Some(s) = bootstrap
            .servers
            .iter()
            .find(|s| s.server_uri.trim().is_empty())
        {
            return Err(invalid(format!(
                "an xds_servers entry has an empty server_uri ({s:?})"
            )));
        }
        Ok(bootstrap)
    }

    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        Self::from_json(&text)
    }

    /// What the process was given in `GRPC_XDS_BOOTSTRAP` (a file) or
    /// `GRPC_XDS_BOOTSTRAP_CONFIG` (the JSON itself), for callers that want gRPC's convention.
    pub fn from_env() -> Result<Self, Error> {
        if let Some(path) = std::env::var_os("GRPC_XDS_BOOTSTRAP") {
            return Self::from_file(Path::new(&path));
        }
        match std::env::var("GRPC_XDS_BOOTSTRAP_CONFIG") {
            Ok(text) => Self::from_json(&text),
            Err(_) => Err(invalid(
                "neither GRPC_XDS_BOOTSTRAP nor GRPC_XDS_BOOTSTRAP_CONFIG is set".into(),
            )),
        }
    }

    /// This bootstrap with the caller's node identity instead of the file's.
    pub fn with_node(mut self, node: Node) -> Self {
        self.node = node;
        self
    }

    /// The first server's address as an `http://` URI for a gRPC channel.
    pub fn server_url(&self) -> Option<String> {
        let uri = self.servers.first()?.server_uri.trim();
        let uri = uri
            .strip_prefix("dns:///")
            .or_else(|| uri.strip_prefix("passthrough:///"))
            .unwrap_or(uri);
        Some(if uri.contains("://") {
            uri.to_owned()
        } else {
            format!("http://{uri}")
        })
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidResource {
        kind: "bootstrap",
        name: String::new(),
        reason,
    }
}
