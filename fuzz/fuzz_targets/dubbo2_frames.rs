//! A byte stream cut into frames and parsed as requests and responses never panics, however it
//! is split across reads.
#![no_main]

use bytes::BytesMut;
use dubbo_codec::dubbo2::{FrameDecoder, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(1, |b| usize::from(*b % 32) + 1);
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    for chunk in data.chunks(split) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let _ = Request::decode(&frame);
                    let _ = Response::decode(&frame);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
