//! Hessian2 calls in Triple's wrapper messages: what Dubbo3 sends for a service without IDL.
//! Each argument is a hessian2 value of its own (no references shared between arguments, as
//! Java writes them), named by its Java class.

use bytes::Bytes;
use dubbo_codec::descriptor::parse_descriptor;
use dubbo_codec::hessian::{self, Value};
use dubbo_codec::triple::{is_hessian2, RequestWrapper, ResponseWrapper, HESSIAN2};
use prost::Message;

use crate::mapping::MappedCall;

/// The request message for a mapped call.
pub fn encode_request(call: &MappedCall) -> Result<Vec<u8>, dubbo_codec::Error> {
    let types = parse_descriptor(&call.parameter_types)?;
    let args = call
        .arguments
        .iter()
        .map(|v| hessian::to_bytes(v).map(bytes::BytesMut::freeze))
        .collect::<Result<Vec<_>, _>>()?;
    let wrapper = RequestWrapper {
        serialize_type: HESSIAN2.to_owned(),
        args,
        arg_types: types.iter().map(|t| t.class_name()).collect(),
    };
    Ok(wrapper.encode_to_vec())
}

/// The result a reply message carries.
pub fn decode_response(message: Bytes) -> Result<Value, dubbo_codec::Error> {
    let wrapper = ResponseWrapper::decode_message(message)?;
    if !wrapper.serialize_type.is_empty() && !is_hessian2(&wrapper.serialize_type) {
        return Err(dubbo_codec::Error::InvalidWrapper {
            message: "TripleResponseWrapper",
            reason: format!(
                "serialize type {:?}; only hessian2 is understood",
                wrapper.serialize_type
            ),
        });
    }
    if wrapper.data.is_empty() {
        return Ok(Value::Null);
    }
    hessian::from_slice(&wrapper.data)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn arguments_travel_one_value_each_with_class_names() {
        let call = MappedCall {
            parameter_types: "Ljava/lang/String;I[J".into(),
            arguments: vec![Value::String("hi".into()), Value::Int(7), Value::Null],
        };
        let wrapper = RequestWrapper::decode(Bytes::from(encode_request(&call).unwrap())).unwrap();
        assert_eq!(wrapper.serialize_type, "hessian4");
        assert_eq!(wrapper.arg_types, ["java.lang.String", "int", "[J"]);
        assert_eq!(
            hessian::from_slice(&wrapper.args[0]).unwrap(),
            Value::String("hi".into())
        );
        assert_eq!(
            hessian::from_slice(&wrapper.args[1]).unwrap(),
            Value::Int(7)
        );
    }

    #[test]
    fn responses_decode_or_say_why_not() {
        let reply = |serialize_type: &str, data: &[u8]| {
            Bytes::from(
                ResponseWrapper {
                    serialize_type: serialize_type.into(),
                    data: Bytes::copy_from_slice(data),
                    r#type: "java.lang.String".into(),
                }
                .encode_to_vec(),
            )
        };
        let hi = hessian::to_bytes(&Value::String("hi".into())).unwrap();
        assert_eq!(
            decode_response(reply("hessian4", &hi)).unwrap(),
            Value::String("hi".into())
        );
        assert_eq!(
            decode_response(reply("hessian2", &hi)).unwrap(),
            Value::String("hi".into())
        );
        assert_eq!(
            decode_response(reply("hessian4", b"")).unwrap(),
            Value::Null
        );
        let err = decode_response(reply("fastjson2", b"{}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("fastjson2"), "{err}");
        assert!(decode_response(reply("hessian4", b"\x53\x00")).is_err());
    }
}
