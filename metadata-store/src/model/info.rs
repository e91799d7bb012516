//! `MetadataInfo`: what one revision of an application exports, as Dubbo 3 writes it
//! (`{"app", "revision", "services": {matchKey: ServiceInfo}}`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Error;

/// The parsed view of a published MetadataInfo JSON string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataInfo {
    pub application: String,
    /// The revision the JSON names, if any (Dubbo's own cache omits it: its key carries it).
    pub revision: Option<String>,
    /// Services by the match key Dubbo writes (`group/interface:version:protocol`).
    pub services: BTreeMap<String, ServiceInfo>,
}

/// One exported service of a revision.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServiceInfo {
    /// The interface name, e.g. `org.apache.dubbo.demo.DemoService`.
    pub name: String,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    /// Absent in Dubbo 3.0 output; later versions write it (`-1` or `0` meaning unknown).
    #[serde(default, deserialize_with = "port")]
    pub port: Option<u16>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Wire {
    app: Option<String>,
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    services: BTreeMap<String, ServiceInfo>,
}

fn port<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let port = Option::<i64>::deserialize(d)?;
    Ok(port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0))
}

impl MetadataInfo {
    /// Parses MetadataInfo JSON published for (`application`, `revision`). The JSON's own `app`
    /// and `revision`, when present, must agree with the key it is published under: a mismatch
    /// is almost always a publisher bug that would otherwise route calls to the wrong services.
    pub fn parse(json: &str, application: &str, revision: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Invalid {
            what: "metadata_info",
            reason,
        };
        let wire: Wire = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        let app = wire
            .app
            .ok_or_else(|| invalid("missing field `app`".into()))?;
        if app != application {
            return Err(invalid(format!(
                "`app` is {app:?} but it is published for application {application:?}"
            )));
        }
        if let Some(own) = wire.revision.as_deref().filter(|r| !r.is_empty()) {
            if own != revision {
                return Err(invalid(format!(
                    "`revision` is {own:?} but it is published as revision {revision:?}"
                )));
            }
        }
        for (key, service) in &wire.services {
            if service.name.is_empty() {
                return Err(invalid(format!("service {key:?} has an empty `name`")));
            }
        }
        Ok(MetadataInfo {
            application: app,
            revision: wire.revision,
            services: wire.services,
        })
    }

    /// The service exporting `interface` with this group and version (empty or absent match
    /// each other), preferring the Dubbo protocol when several protocols export it.
    pub fn service(
        &self,
        interface: &str,
        group: Option<&str>,
        version: Option<&str>,
    ) -> Option<&ServiceInfo> {
        let same =
            |a: Option<&str>, b: Option<&str>| a.unwrap_or_default() == b.unwrap_or_default();
        let mut found = self.services.values().filter(|s| {
            s.name == interface
                && same(s.group.as_deref(), group)
                && same(s.version.as_deref(), version)
        });
        let first = found.next()?;
        if first.protocol.as_deref().is_none_or(|p| p == "dubbo") {
            return Some(first);
        }
        Some(
            found
                .find(|s| s.protocol.as_deref() == Some("dubbo"))
                .unwrap_or(first),
        )
    }
}

impl ServiceInfo {
    /// Dubbo's service key: `group/interface:version`, empty parts left out.
    pub fn service_key(&self) -> String {
        let mut key = String::new();
        if let Some(group) = self.group.as_deref().filter(|g| !g.is_empty()) {
            key.push_str(group);
            key.push('/');
        }
        key.push_str(&self.name);
        if let Some(version) = self.version.as_deref().filter(|v| !v.is_empty()) {
            key.push(':');
            key.push_str(version);
        }
        key
    }

    /// The identifier under which this service's definition is published by `application`:
    /// Dubbo's metadata identifier `interface:version:group:provider:application`.
    pub fn definition_identifier(&self, application: &str) -> String {
        definition_identifier(
            &self.name,
            self.version.as_deref(),
            self.group.as_deref(),
            application,
        )
    }

    /// The names of its methods, from the `methods` parameter providers write.
    pub fn method_names(&self) -> impl Iterator<Item = &str> {
        self.params
            .get("methods")
            .map(String::as_str)
            .unwrap_or_default()
            .split(',')
            .filter(|m| !m.is_empty())
    }
}

/// Dubbo's metadata identifier of a provider's service definition
/// (`MetadataIdentifier.getUniqueKey`): `interface:version:group:provider:application`.
pub fn definition_identifier(
    interface: &str,
    version: Option<&str>,
    group: Option<&str>,
    application: &str,
) -> String {
    format!(
        "{interface}:{}:{}:provider:{application}",
        version.unwrap_or_default(),
        group.unwrap_or_default()
    )
}
