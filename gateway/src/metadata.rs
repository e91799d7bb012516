//! Typing calls by published Dubbo metadata: the endpoint a call goes to says which
//! application instance and revision it is; its MetadataInfo says which services that revision
//! exports; the service's definition gives each method's parameter types and the POJO and enum
//! shapes behind them. The result is compiled once per published definition and reused.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use http_bridge::dubbo2::DubboIdentity;
use http_bridge::mapping::{MethodSig, Param};
use http_bridge::types::{TypeRef, TypeRegistry};
use metadata_store::model::ServiceDefinition;
use metadata_store::{Entry, Registry};

use crate::errors::GatewayError;

/// A service definition compiled for conversion.
#[derive(Debug)]
pub struct CompiledService {
    pub methods: HashMap<String, Vec<MethodSig>>,
    /// The configuration's types with the definition's own on top.
    pub types: TypeRegistry,
}

impl CompiledService {
    pub fn overloads(&self, method: &str) -> &[MethodSig] {
        self.methods.get(method).map_or(&[], Vec::as_slice)
    }
}

/// Resolves and caches compiled definitions.
#[derive(Debug)]
pub struct Typing {
    pub registry: Arc<Registry>,
    compiled: DashMap<String, (Arc<Entry<ServiceDefinition>>, Arc<CompiledService>)>,
    /// Keys found absent recently: an endpoint whose provider publishes nothing must not cost
    /// a backend read per call. Bounded by the endpoints and services the gateway knows.
    absent: DashMap<String, (Instant, u64)>,
}

/// How long "nothing published" is believed before the backend is asked again (unless the store
/// changes first).
const ABSENT_FOR: Duration = Duration::from_secs(1);

/// What the caller asked for, to find the service in a revision.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub interface: &'a str,
    pub method: &'a str,
    pub group: Option<&'a str>,
    pub version: Option<&'a str>,
}

impl Typing {
    pub fn new(registry: Arc<Registry>) -> Self {
        Typing {
            registry,
            compiled: DashMap::new(),
            absent: DashMap::new(),
        }
    }

    /// The published definition of the wanted service on the instance `identity` names, or
    /// `None` when the instance has no published metadata (the caller then falls back to
    /// configured or inferred types). A revision that does not export the service, or a
    /// definition without the method, is a 404: the provider would refuse the call anyway.
    pub async fn resolve(
        &self,
        identity: &DubboIdentity,
        wanted: Wanted<'_>,
        config: &crate::runtime::Runtime,
    ) -> Result<Option<Arc<CompiledService>>, GatewayError> {
        let (Some(application), Some(revision)) = (&identity.application, &identity.revision)
        else {
            return Ok(None);
        };
        let unavailable = |e: metadata_store::Error| match e {
            metadata_store::Error::Corrupt(_) => {
                tracing::error!(error = %e, "stored metadata is unreadable");
                GatewayError::BadGateway(
                    "the metadata published for this provider is unreadable".into(),
                )
            }
            _ => {
                tracing::warn!(error = %e, "metadata store unavailable");
                GatewayError::Unavailable("the metadata store cannot answer; retry later".into())
            }
        };
        // Read before the lookups: a change during them makes their "absent" stale at once.
        let generation = self.registry.generation();
        let info_key = format!("{application}\0{revision}");
        if self.recently_absent(&info_key) {
            return Ok(None);
        }
        let Some(info) = self
            .registry
            .metadata(application, revision)
            .await
            .map_err(unavailable)?
        else {
            tracing::debug!(%application, %revision, "no metadata published; types from config or inference");
            self.absent.insert(info_key, (Instant::now(), generation));
            return Ok(None);
        };
        let service = info
            .view
            .service(wanted.interface, wanted.group, wanted.version)
            .ok_or_else(|| {
                GatewayError::NotFound(format!(
                    "revision {revision} of application {application} does not export {}{}{}",
                    wanted.interface,
                    wanted
                        .group
                        .map(|g| format!(" in group {g:?}"))
                        .unwrap_or_default(),
                    wanted
                        .version
                        .map(|v| format!(" version {v:?}"))
                        .unwrap_or_default(),
                ))
            })?;
        let identifier = service.definition_identifier(application);
        if self.recently_absent(&identifier) {
            return Ok(None);
        }
        let Some(definition) = self
            .registry
            .definition(&identifier)
            .await
            .map_err(unavailable)?
        else {
            tracing::debug!(%identifier, "no service definition published");
            self.absent.insert(identifier, (Instant::now(), generation));
            return Ok(None);
        };
        // The guard of `get` must be gone before `insert` on the same shard (DashMap locks are
        // not re-entrant), hence the two steps.
        let cached = self.compiled.get(&identifier).and_then(|hit| {
            let (entry, compiled) = hit.value();
            // The same content under a new entry (a refresh, a cache resync) compiles the same.
            (Arc::ptr_eq(entry, &definition) || entry.record.value == definition.record.value)
                .then(|| compiled.clone())
        });
        let compiled = match cached {
            Some(compiled) => compiled,
            None => {
                let compiled = Arc::new(compile(&definition.view, config));
                self.compiled
                    .insert(identifier, (definition.clone(), compiled.clone()));
                compiled
            }
        };
        if compiled.overloads(wanted.method).is_empty() {
            return Err(GatewayError::NotFound(format!(
                "{} has no method {:?} in its published definition",
                wanted.interface, wanted.method
            )));
        }
        Ok(Some(compiled))
    }
}

impl Typing {
    fn recently_absent(&self, key: &str) -> bool {
        let generation = self.registry.generation();
        self.absent
            .get(key)
            .is_some_and(|seen| seen.1 == generation && seen.0.elapsed() < ABSENT_FOR)
    }
}

/// Types Java knows by itself; a definition describing their fields (Dubbo 2.7 writes
/// `java.lang.String` with `value: char[]`) must not turn them into POJOs.
fn is_builtin(name: &str) -> bool {
    name.starts_with("java.") || name.starts_with("javax.") || !name.contains('.')
}

fn compile(def: &ServiceDefinition, config: &crate::runtime::Runtime) -> CompiledService {
    let mut types = config.registry.clone();
    for ty in &def.types {
        if is_builtin(&ty.name) {
            continue;
        }
        if !ty.enums.is_empty() {
            types.add_enum(&ty.name, ty.enums.clone());
        } else if !ty.properties.is_empty() {
            let properties = ty
                .properties
                .iter()
                .filter_map(|(field, ty_name)| match TypeRef::parse(ty_name) {
                    Ok(t) => Some((field.clone(), t)),
                    Err(e) => {
                        tracing::warn!(class = %ty.name, %field, error = %e, "property type not understood; left out");
                        None
                    }
                })
                .collect();
            types.add_class(&ty.name, properties);
        }
    }
    let mut methods: HashMap<String, Vec<MethodSig>> = HashMap::new();
    'methods: for m in &def.methods {
        let mut params = Vec::with_capacity(m.parameter_types.len());
        for t in &m.parameter_types {
            match TypeRef::parse(t) {
                Ok(ty) => params.push(Param { name: None, ty }),
                Err(e) => {
                    tracing::warn!(method = %m.name, error = %e, "overload left out: parameter type not understood");
                    continue 'methods;
                }
            }
        }
        let mut sig = MethodSig {
            name: m.name.clone(),
            params,
        };
        if let Some(named) = configured_names(config, &def.canonical_name, &sig) {
            for (p, n) in sig.params.iter_mut().zip(&named.params) {
                p.name.clone_from(&n.name);
            }
        }
        methods.entry(m.name.clone()).or_default().push(sig);
    }
    CompiledService { methods, types }
}

/// Dubbo publishes no parameter names: they come from a configured overload with the same
/// erased signature, so named arguments work where the operator gave names.
fn configured_names<'c>(
    config: &'c crate::runtime::Runtime,
    interface: &str,
    sig: &MethodSig,
) -> Option<&'c MethodSig> {
    let descriptor = sig.descriptor();
    config
        .overloads(interface, &sig.name)
        .iter()
        .find(|s| s.descriptor() == descriptor)
}

/// The names callers use for a published method's parameters: configured ones, else `argN`.
pub fn parameter_names(
    config: &crate::runtime::Runtime,
    interface: &str,
    method: &str,
    parameter_types: &[String],
) -> Vec<String> {
    let params: Option<Vec<Param>> = parameter_types
        .iter()
        .map(|t| TypeRef::parse(t).ok().map(|ty| Param { name: None, ty }))
        .collect();
    let named = params.and_then(|params| {
        let sig = MethodSig {
            name: method.to_owned(),
            params,
        };
        configured_names(config, interface, &sig).cloned()
    });
    (0..parameter_types.len())
        .map(|i| {
            named
                .as_ref()
                .and_then(|s| s.params.get(i))
                .and_then(|p| p.name.clone())
                .unwrap_or_else(|| format!("arg{i}"))
        })
        .collect()
}
