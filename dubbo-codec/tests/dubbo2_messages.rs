//! Dubbo2 requests and responses: exact bytes where peers' bytes are known, round trips for
//! every result flag, and the quirks of real providers.

use bytes::BytesMut;
use dubbo_codec::dubbo2::{
    Attachments, Frame, FrameDecoder, Invocation, Outcome, Request, RequestKind, Response, Status,
};
use dubbo_codec::hessian::{Encoder, Value};
use dubbo_codec::Error;

fn frame(bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let frame = FrameDecoder::default()
        .decode(&mut buf)
        .expect("valid")
        .expect("complete");
    assert!(buf.is_empty(), "one frame exactly");
    frame
}

fn encode_response(r: &Response) -> Vec<u8> {
    let mut out = BytesMut::new();
    r.encode(&mut out).expect("encodable");
    out.to_vec()
}

#[test]
fn heartbeat_bytes_match_java() {
    // What Java (and dubbo-ssl-python) send: request|two-way|event|hessian2, body `N`.
    let mut out = BytesMut::new();
    Request {
        id: 5,
        two_way: true,
        kind: RequestKind::Heartbeat,
    }
    .encode(&mut out)
    .expect("enc");
    assert_eq!(
        &out[..],
        b"\xda\xbb\xe2\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x01N"
    );
    let reply = Response {
        id: 5,
        status: Status::OK,
        outcome: Outcome::Heartbeat,
        attachments: None,
    };
    assert_eq!(
        encode_response(&reply),
        b"\xda\xbb\x22\x14\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x01N"
    );
    assert_eq!(
        Request::decode(&frame(&out)).expect("dec").kind,
        RequestKind::Heartbeat
    );
    // A heartbeat with an empty body (as some clients send) is still a heartbeat.
    let empty = b"\xda\xbb\xe2\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x00\x00\x00";
    assert_eq!(
        Request::decode(&frame(empty)).expect("dec").kind,
        RequestKind::Heartbeat
    );
}

#[test]
fn invocation_round_trip_and_layout() {
    let mut inv = Invocation::new(
        "org.apache.dubbo.demo.DemoService",
        "add",
        "II",
        vec![Value::Int(2), Value::Int(3)],
    );
    inv.service_version = Some("1.0.0".into());
    inv.attachments.insert("timeout", "3000");
    let request = Request {
        id: 42,
        two_way: true,
        kind: RequestKind::Invocation(inv.clone()),
    };
    let mut out = BytesMut::new();
    request.encode(&mut out).expect("enc");
    assert_eq!(&out[..4], b"\xda\xbb\xc2\x00", "request, two-way, hessian2");
    assert_eq!(
        u32::from_be_bytes([out[12], out[13], out[14], out[15]]) as usize,
        out.len() - 16
    );
    // Body: "2.0.2", path, version, method, descriptor, 2, 3, attachments.
    assert_eq!(&out[16..22], b"\x052.0.2");
    let decoded = Request::decode(&frame(&out)).expect("dec");
    assert_eq!(decoded, request);
    let RequestKind::Invocation(back) = decoded.kind else {
        panic!("an invocation")
    };
    assert_eq!(
        back.attachments.get("path"),
        Some(&Value::from("org.apache.dubbo.demo.DemoService"))
    );
}

#[test]
fn every_response_flag_round_trips() {
    let mut attachments = Attachments::default();
    attachments.insert("dubbo", "2.0.2");
    let exception = Value::object(
        "java.lang.IllegalArgumentException",
        vec![("detailMessage", "boom".into())],
    );
    let cases = [
        (Outcome::Exception(exception.clone()), None, 0x90),
        (Outcome::Value("hi".into()), None, 0x91),
        (Outcome::Null, None, 0x92),
        (
            Outcome::Exception(exception),
            Some(attachments.clone()),
            0x93,
        ),
        (Outcome::Value("hi".into()), Some(attachments.clone()), 0x94),
        (Outcome::Null, Some(attachments), 0x95),
    ];
    for (outcome, attachments, flag_byte) in cases {
        let response = Response {
            id: 3,
            status: Status::OK,
            outcome,
            attachments,
        };
        let bytes = encode_response(&response);
        assert_eq!(bytes[16], flag_byte, "{response:?}");
        assert_eq!(Response::decode(&frame(&bytes)).expect("dec"), response);
    }
}

#[test]
fn error_status_carries_a_message() {
    let response = Response {
        id: 8,
        status: Status::SERVICE_NOT_FOUND,
        outcome: Outcome::Error("no such service".into()),
        attachments: None,
    };
    let bytes = encode_response(&response);
    assert_eq!(bytes[3], 60);
    assert_eq!(Response::decode(&frame(&bytes)).expect("dec"), response);
}

/// Builds a response frame with a hand-written body.
fn response_frame(status: u8, event: bool, body: impl FnOnce(&mut Encoder<'_>)) -> Frame {
    let mut body_buf = BytesMut::new();
    body(&mut Encoder::new(&mut body_buf));
    let mut out = BytesMut::new();
    out.extend_from_slice(&[0xda, 0xbb, if event { 0x22 } else { 0x02 }, status]);
    out.extend_from_slice(&7u64.to_be_bytes());
    out.extend_from_slice(&(body_buf.len() as u32).to_be_bytes());
    out.extend_from_slice(&body_buf);
    frame(&out)
}

#[test]
fn tolerates_the_npm_provider_quirks() {
    // Status 60 with the message followed by an attachments map: the map is ignored.
    let f = response_frame(60, false, |e| {
        e.write_string("Not found exported service");
        e.write_map_begin(None).expect("map");
        e.write_end();
    });
    assert_eq!(
        Response::decode(&f).expect("dec").outcome,
        Outcome::Error("Not found exported service".into())
    );
    // An exception sent as a plain string rather than a Throwable.
    let f = response_frame(20, false, |e| {
        e.write_int(3);
        e.write_string("Error: boom");
        e.write_map_begin(None).expect("map");
        e.write_end();
    });
    assert_eq!(
        Response::decode(&f).expect("dec").outcome,
        Outcome::Exception("Error: boom".into())
    );
    // A heartbeat reply with request id 0 and an odd body is still a heartbeat.
    let f = response_frame(20, true, |e| e.write_string("whatever"));
    assert_eq!(
        Response::decode(&f).expect("dec").outcome,
        Outcome::Heartbeat
    );
    // Its heartbeat reply: `da bb 62 00`, two-way|event with status 0, body `N`.
    let f = frame(b"\xda\xbb\x62\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01N");
    assert_eq!(
        Response::decode(&f).expect("dec").outcome,
        Outcome::Heartbeat
    );
}

#[test]
fn malformed_bodies_are_errors_with_context() {
    let f = response_frame(20, false, |e| e.write_int(9));
    assert_eq!(
        Response::decode(&f),
        Err(Error::UnknownResponseFlag { flag: 9 })
    );
    let f = response_frame(20, false, |e| e.write_int(1));
    let err = Response::decode(&f).expect_err("missing value");
    assert!(err.to_string().contains("result value"), "{err}");
    let mut bytes = encode_response(&Response::value(1, Value::Int(1), None));
    bytes[2] = 0x06; // serialization id 6 (fastjson)
    assert_eq!(
        Response::decode(&frame(&bytes)),
        Err(Error::UnsupportedSerialization { id: 6 })
    );
}
