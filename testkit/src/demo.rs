//! `org.apache.dubbo.demo.DemoService`, the contract of `peers/README.md`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dubbo_codec::hessian::{ClassDef, List, Object, Value};

use crate::provider::{exception, Reply, Service, Services};

pub const INTERFACE: &str = "org.apache.dubbo.demo.DemoService";
pub const USER_CLASS: &str = "org.apache.dubbo.demo.User";

/// The `User` class definition, shared by every user this service returns.
pub fn user_class() -> Arc<ClassDef> {
    Arc::new(ClassDef::new(USER_CLASS, ["id", "name", "age", "email"]))
}

pub fn user(class: &Arc<ClassDef>, id: i64, name: &str, age: i32, email: &str) -> Value {
    Value::Object(Object {
        class: Arc::clone(class),
        fields: vec![Value::Long(id), name.into(), Value::Int(age), email.into()],
    })
}

/// The demo service. `delay` slows every call down, to test timeouts.
#[derive(Debug, Clone)]
pub struct DemoService {
    user_class: Arc<ClassDef>,
    delay: Option<Duration>,
    /// What `whoami()` answers (this provider only: tells instances apart in routing tests).
    instance: Arc<str>,
}

impl Default for DemoService {
    fn default() -> Self {
        DemoService {
            user_class: user_class(),
            delay: None,
            instance: Arc::from("demo"),
        }
    }
}

impl DemoService {
    pub fn slow(delay: Duration) -> Self {
        DemoService {
            delay: Some(delay),
            ..Self::default()
        }
    }

    /// An instance that answers `whoami()` with `name`.
    pub fn named(name: &str) -> Self {
        DemoService {
            instance: Arc::from(name),
            ..Self::default()
        }
    }

    /// The services of a provider exporting only this one.
    pub fn services(self) -> Services {
        Services::default().with(INTERFACE, self)
    }

    fn dispatch(&self, method: &str, args: &[Value]) -> Option<Reply> {
        let bad =
            |what: &str| Reply::Exception(exception("java.lang.IllegalArgumentException", what));
        Some(match (method, args) {
            ("sayHello", [Value::String(name)]) => Reply::Value(format!("Hello, {name}").into()),
            ("add", [a, b]) => match (a.as_i64(), b.as_i64()) {
                (Some(a), Some(b)) => Reply::Value(Value::Int((a + b) as i32)),
                _ => bad("add takes two ints"),
            },
            ("echoUser", [Value::Object(u)]) => {
                let mut u = u.clone();
                if let Some(i) = u.class.field_index("age") {
                    let age = u.fields[i].as_i64().unwrap_or(0);
                    u.fields[i] = Value::Int(age as i32 + 1);
                }
                Reply::Value(Value::Object(u))
            }
            ("listUsers", [n]) => {
                let n = n.as_i64().unwrap_or(0).clamp(0, 10_000);
                let users = (0..n)
                    .map(|i| {
                        user(
                            &self.user_class,
                            i,
                            &format!("user{i}"),
                            20 + i as i32,
                            &format!("user{i}@example.com"),
                        )
                    })
                    .collect();
                Reply::Value(Value::List(List::untyped(users)))
            }
            ("fail", [Value::String(message)]) => {
                Reply::Exception(exception("java.lang.IllegalArgumentException", message))
            }
            ("whoami", []) => Reply::Value(Value::String(self.instance.to_string())),
            ("now", []) => {
                let ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                Reply::Value(Value::Date(ms))
            }
            ("echo", [value]) => Reply::Value(value.clone()),
            ("sayHello" | "add" | "echoUser" | "listUsers" | "fail" | "echo", _) => {
                bad(&format!("wrong arguments for {method}"))
            }
            _ => return None,
        })
    }
}

impl Service for DemoService {
    async fn invoke(
        &self,
        method: &str,
        _parameter_types: &str,
        args: Vec<Value>,
    ) -> Option<Reply> {
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        self.dispatch(method, &args)
    }
}

/// The MetadataInfo JSON a Dubbo 3 provider of this service would publish for `application` at
/// `revision` (the shape of `MetadataInfo`, as in Dubbo's own cache and ZooKeeper nodes).
pub fn metadata_info(application: &str, revision: &str) -> String {
    serde_json::json!({
        "app": application,
        "revision": revision,
        "services": {
            format!("{INTERFACE}:dubbo"): {
                "name": INTERFACE,
                "protocol": "dubbo",
                "path": INTERFACE,
                "params": {
                    "side": "provider",
                    "interface": INTERFACE,
                    "application": application,
                    "methods": "add,echo,echoUser,fail,listUsers,now,sayHello",
                    "dubbo": "2.0.2",
                }
            }
        }
    })
    .to_string()
}

/// The identifier its service definition is published under (Dubbo's metadata identifier).
pub fn definition_identifier(application: &str) -> String {
    format!("{INTERFACE}:::provider:{application}")
}

/// The FullServiceDefinition JSON of this service, as Dubbo 3 writes it.
pub fn service_definition() -> String {
    let method = |name: &str, params: &[&str], ret: &str| serde_json::json!({ "name": name, "parameterTypes": params, "returnType": ret });
    serde_json::json!({
        "canonicalName": INTERFACE,
        "codeSource": "file:/demo/target/classes/",
        "methods": [
            method("sayHello", &["java.lang.String"], "java.lang.String"),
            method("add", &["int", "int"], "int"),
            method("echoUser", &[USER_CLASS], USER_CLASS),
            method("listUsers", &["int"], &format!("java.util.List<{USER_CLASS}>")),
            method("fail", &["java.lang.String"], "java.lang.String"),
            method("now", &[], "java.util.Date"),
            method("echo", &["java.lang.Object"], "java.lang.Object"),
        ],
        "types": [
            { "type": USER_CLASS, "properties": {
                "id": "long", "name": "java.lang.String", "age": "int", "email": "java.lang.String"
            } },
            { "type": "java.lang.String" },
            { "type": "int" },
            { "type": "long" },
        ],
        "parameters": { "interface": INTERFACE, "side": "provider" }
    })
    .to_string()
}
