//! Encoding and decoding a representative Dubbo payload: a POJO with 10 fields, a list of 100
//! of them, and a whole Dubbo2 request frame carrying the list. The values are the ones
//! `peers/node/bench.js` builds, so hessian.js's figures from the same run are the anchor
//! (`bench/hessian.sh` runs both and prints the ratios).

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dubbo_codec::dubbo2::{FrameDecoder, Invocation, Request, RequestKind};
use dubbo_codec::hessian::{self, List, Value};
use std::hint::black_box;
use testkit::bench::{item, item_class};

fn bench(c: &mut Criterion) {
    let class = item_class();
    let pojo = item(&class, 7);
    let list = Value::List(List::untyped((0..100).map(|i| item(&class, i)).collect()));
    for (name, value) in [("pojo", &pojo), ("list100", &list)] {
        let bytes = hessian::to_bytes(value).expect("encodable");
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut out = BytesMut::with_capacity(bytes.len());
        group.bench_function("encode", |b| {
            b.iter(|| {
                out.clear();
                hessian::Encoder::new(&mut out)
                    .write_value(black_box(value))
                    .expect("encodable");
                black_box(out.len())
            })
        });
        group.bench_function("decode", |b| {
            b.iter(|| hessian::from_slice(black_box(&bytes)).expect("decodes"))
        });
        group.finish();
    }

    let request = Request {
        id: 1,
        two_way: true,
        kind: RequestKind::Invocation(Invocation::new(
            "org.apache.dubbo.bench.ItemService",
            "saveAll",
            "Ljava/util/List;",
            vec![list],
        )),
    };
    let mut frame = BytesMut::new();
    request.encode(&mut frame).expect("encodable");
    let mut group = c.benchmark_group("request_frame");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    let mut out = BytesMut::with_capacity(frame.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&request).encode(&mut out).expect("encodable");
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&frame[..]);
            let f = FrameDecoder::default()
                .decode(&mut buf)
                .expect("frame")
                .expect("complete");
            Request::decode(&f).expect("request")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
