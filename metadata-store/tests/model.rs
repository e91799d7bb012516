//! Dubbo's own JSON, as Java Dubbo wrote it, parsed into the domain types.

use metadata_store::model::{MetadataInfo, ServiceDefinition};
use metadata_store::Error;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const DEMO_REVISION: &str = "da3be833baa2088c5f6776fb7ab1a436";

#[test]
fn application_metadata_written_by_dubbo_3() {
    let json = fixture("zk-metadata-demo-provider-da3be833baa2088c5f6776fb7ab1a436.json");
    assert_eq!(json.len(), 1286, "the fixture is the exact ZooKeeper value");
    let info = MetadataInfo::parse(&json, "demo-provider", DEMO_REVISION).expect("parse");
    assert_eq!(info.application, "demo-provider");
    assert_eq!(info.revision.as_deref(), Some(DEMO_REVISION));
    let keys: Vec<&str> = info.services.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "org.apache.dubbo.demo.DemoService:dubbo",
            "org.apache.dubbo.demo.RestDemoService:1.0.0:rest"
        ]
    );
    let demo = info
        .service("org.apache.dubbo.demo.DemoService", None, None)
        .expect("DemoService");
    assert_eq!(demo.protocol.as_deref(), Some("dubbo"));
    assert_eq!(
        (demo.group.as_deref(), demo.version.as_deref(), demo.port),
        (None, None, None)
    );
    assert_eq!(demo.params.len(), 17);
    assert_eq!(demo.params["timeout"], "3000");
    assert_eq!(
        demo.method_names().collect::<Vec<_>>(),
        ["sayHello", "sayHelloAsync"]
    );
    assert_eq!(demo.service_key(), "org.apache.dubbo.demo.DemoService");
    assert_eq!(
        demo.definition_identifier("demo-provider"),
        "org.apache.dubbo.demo.DemoService:::provider:demo-provider"
    );

    let rest = info
        .service("org.apache.dubbo.demo.RestDemoService", None, Some("1.0.0"))
        .expect("RestDemoService 1.0.0");
    assert_eq!(rest.params.len(), 19);
    // A service-level `revision` param is not the metadata revision.
    assert_eq!(rest.params["revision"], "1.0.0");
    assert!(info
        .service("org.apache.dubbo.demo.RestDemoService", None, None)
        .is_none());
}

#[test]
fn dubbo_cache_file_entry_without_revision() {
    let cache = fixture("test-metadata.dubbo.cache");
    let (revision, json) = cache.trim_end().split_once('=').expect("revision=json");
    let info = MetadataInfo::parse(json, "demo", revision).expect("parse");
    assert_eq!(info.revision, None);
    let service = info
        .service(
            "org.apache.dubbo.registry.service.DemoService2",
            Some("greeting"),
            Some("1.0.0"),
        )
        .expect("service");
    assert_eq!(
        service.service_key(),
        "greeting/org.apache.dubbo.registry.service.DemoService2:1.0.0"
    );
    assert_eq!(service.params.len(), 5);
    assert_eq!(service.params["sayHello.timeout"], "7000");
}

#[test]
fn metadata_must_agree_with_its_key() {
    let json = fixture("zk-metadata-demo-provider-da3be833baa2088c5f6776fb7ab1a436.json");
    let reason = |r: Result<MetadataInfo, Error>| match r {
        Err(Error::Invalid { reason, .. }) => reason,
        other => panic!("expected Invalid, got {other:?}"),
    };
    assert!(reason(MetadataInfo::parse(&json, "other-app", DEMO_REVISION)).contains("other-app"));
    assert!(reason(MetadataInfo::parse(&json, "demo-provider", "abc")).contains("\"abc\""));
    assert!(reason(MetadataInfo::parse("{\"services\":{}}", "a", "1")).contains("app"));
    assert!(reason(MetadataInfo::parse("not json", "a", "1")).contains("expected"));
    assert!(reason(MetadataInfo::parse(
        r#"{"app":"a","services":{"k":{"name":""}}}"#,
        "a",
        "1"
    ))
    .contains("empty `name`"));
    // Later Dubbo versions write ports; -1 and 0 mean none.
    let info = MetadataInfo::parse(
        r#"{"app":"a","services":{"x:dubbo":{"name":"x","port":20880},"y:dubbo":{"name":"y","port":-1}}}"#,
        "a",
        "1",
    )
    .expect("ports");
    assert_eq!(info.services["x:dubbo"].port, Some(20880));
    assert_eq!(info.services["y:dubbo"].port, None);
}

#[test]
fn service_definition_written_by_dubbo_3() {
    let json = fixture("zk-metadata-org.apache.dubbo.demo.DemoService-provider-demo-provider.json");
    assert_eq!(json.len(), 1061);
    let def = ServiceDefinition::parse(&json).expect("parse");
    assert_eq!(def.canonical_name, "org.apache.dubbo.demo.DemoService");
    assert_eq!(def.parameters.len(), 13);
    assert!(def
        .code_source
        .as_deref()
        .is_some_and(|c| c.starts_with("file:/")));
    let methods: Vec<(&str, &[String], &str)> = def
        .methods
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                &m.parameter_types[..],
                m.return_type.as_str(),
            )
        })
        .collect();
    assert_eq!(
        methods,
        [
            (
                "sayHelloAsync",
                &["java.lang.String".to_owned()][..],
                "java.util.concurrent.CompletableFuture"
            ),
            (
                "sayHello",
                &["java.lang.String".to_owned()][..],
                "java.lang.String"
            ),
        ]
    );
    assert_eq!(def.types.len(), 5);
    let completion = def
        .type_named("java.util.concurrent.CompletableFuture.Completion")
        .expect("Completion");
    assert_eq!(
        completion.properties,
        [
            (
                "next".to_owned(),
                "java.util.concurrent.CompletableFuture.Completion".to_owned()
            ),
            ("status".to_owned(), "int".to_owned())
        ]
    );
    assert_eq!(def.methods_named("sayHello").count(), 1);
}

#[test]
fn service_definition_written_by_dubbo_2_7() {
    let json = fixture("full-service-definition-2.7-AnnotationService.json");
    let def = ServiceDefinition::parse(&json).expect("parse");
    assert_eq!(
        def.canonical_name,
        "org.apache.dubbo.samples.metadatareport.configcenter.api.AnnotationService"
    );
    assert_eq!(def.parameters.len(), 14);
    assert_eq!(def.methods.len(), 1);
    // Nested type objects become names, and the inline `char[]` joins the types list.
    let string = def.type_named("java.lang.String").expect("String");
    assert_eq!(
        string.properties,
        [
            ("value".to_owned(), "char[]".to_owned()),
            ("hash".to_owned(), "int".to_owned())
        ]
    );
    let names: Vec<&str> = def.types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["char[]", "int", "java.lang.String", "char"]);
}

#[test]
fn bad_definitions_are_refused_with_a_reason() {
    let consumer =
        fixture("zk-metadata-org.apache.dubbo.demo.DemoService-consumer-demo-consumer.json");
    let err = ServiceDefinition::parse(&consumer).expect_err("consumer parameters");
    // Its `methods` is a comma-separated string, not the definition's list of methods.
    assert!(err.to_string().contains("expected a sequence"), "{err}");
    let err = ServiceDefinition::parse(r#"{"methods":[]}"#).expect_err("no canonicalName");
    assert!(err.to_string().contains("canonicalName"), "{err}");
    for (json, needle) in [
        (
            r#"{"canonicalName":"a","methods":[{"name":""}]}"#,
            "empty `name`",
        ),
        (
            r#"{"canonicalName":"a","methods":[{"name":"m","parameterTypes":[""]}]}"#,
            "empty parameter type",
        ),
        (
            r#"{"canonicalName":"a","types":[{"type":"T","properties":{"x":3}}]}"#,
            "not a type name",
        ),
        (
            r#"{"canonicalName":"a","types":[{"type":""}]}"#,
            "empty `type`",
        ),
        (r#"[1,2]"#, "invalid type"),
    ] {
        let err = ServiceDefinition::parse(json).expect_err(json);
        assert!(err.to_string().contains(needle), "{json}: {err}");
    }
}
