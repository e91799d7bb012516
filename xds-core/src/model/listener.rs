//! `Listener`: where HTTP arrives and which routes apply. What matters here is the HTTP
//! connection manager (in a filter chain, or as the `api_listener` gRPC clients are given):
//! its routes by RDS name or inline. Listeners carrying other protocols (TCP proxies, ...) are
//! valid and kept, with no HTTP part.

use envoy_types::pb::envoy::config::listener::v3 as pb;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;
use prost::Message;

use super::endpoints::Address;
use super::route::RouteConfig;
use crate::Error;

const KIND: &str = "Listener";
const HCM_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    /// `None` for API and internal listeners (no socket).
    pub address: Option<Address>,
    /// One per filter chain (or the API listener) holding an HTTP connection manager.
    pub http: Vec<HttpConnectionManager>,
}

#[derive(Debug, Clone)]
pub struct HttpConnectionManager {
    pub routes: RouteSource,
}

#[derive(Debug, Clone)]
pub enum RouteSource {
    /// A RouteConfiguration to fetch by name.
    Rds(String),
    Inline(RouteConfig),
}

impl Listener {
    /// The RouteConfiguration names this listener needs from RDS.
    pub fn rds_names(&self) -> impl Iterator<Item = &str> {
        self.http.iter().filter_map(|h| match &h.routes {
            RouteSource::Rds(name) => Some(name.as_str()),
            RouteSource::Inline(_) => None,
        })
    }
}

impl TryFrom<&pb::Listener> for Listener {
    type Error = Error;

    fn try_from(l: &pb::Listener) -> Result<Self, Error> {
        let invalid = |reason: String| Error::invalid(KIND, &l.name, reason);
        // Static listeners may be unnamed; over xDS the resource name keys them anyway.
        let mut http = Vec::new();
        if let Some(api) = &l.api_listener {
            let any = api
                .api_listener
                .as_ref()
                .ok_or_else(|| invalid("api_listener is empty".into()))?;
            if any.type_url != HCM_TYPE {
                return Err(invalid(format!(
                    "api_listener holds {}, not an HttpConnectionManager",
                    any.type_url
                )));
            }
            http.push(manager(&any.value).map_err(|e| invalid(format!("api_listener: {e}")))?);
        }
        let chains = l
            .filter_chains
            .iter()
            .chain(l.default_filter_chain.as_ref());
        for (i, chain) in chains.enumerate() {
            for filter in &chain.filters {
                let Some(pb::filter::ConfigType::TypedConfig(any)) = &filter.config_type else {
                    continue;
                };
                if any.type_url == HCM_TYPE {
                    let m = manager(&any.value).map_err(|e| {
                        invalid(format!("filter_chains[{i}] filter {:?}: {e}", filter.name))
                    })?;
                    http.push(m);
                }
            }
        }
        let address = match &l.address {
            Some(a) => Some(
                super::endpoints::address(Some(a)).map_err(|e| invalid(format!("address: {e}")))?,
            ),
            // API and internal listeners have no socket.
            None if l.api_listener.is_some() || l.listener_specifier.is_some() => None,
            None => {
                return Err(invalid(
                    "a listener needs an address or an api_listener".into(),
                ))
            }
        };
        Ok(Listener {
            name: l.name.clone(),
            address,
            http,
        })
    }
}

fn manager(bytes: &[u8]) -> Result<HttpConnectionManager, String> {
    use hcm::http_connection_manager::RouteSpecifier;
    let m = hcm::HttpConnectionManager::decode(bytes)
        .map_err(|e| format!("not an HttpConnectionManager: {e}"))?;
    let routes = match &m.route_specifier {
        Some(RouteSpecifier::Rds(rds)) if !rds.route_config_name.is_empty() => {
            RouteSource::Rds(rds.route_config_name.clone())
        }
        Some(RouteSpecifier::Rds(_)) => return Err("rds needs a route_config_name".into()),
        Some(RouteSpecifier::RouteConfig(rc)) => {
            RouteSource::Inline(RouteConfig::try_from(rc).map_err(|e| e.to_string())?)
        }
        Some(RouteSpecifier::ScopedRoutes(_)) => {
            return Err("scoped routes are not supported".into())
        }
        None => return Err("an HttpConnectionManager needs routes (rds or route_config)".into()),
    };
    Ok(HttpConnectionManager { routes })
}
