'use strict';
/*
 * hessian.js 2.11.0 encode/decode timings: the anchor for the Rust criterion benchmark of the
 * hessian2 codec. Same values on both sides:
 *   item(i) = org.apache.dubbo.bench.Item {
 *     id: long 1000+i, name: "item-"+i, price: double 9.99+i, quantity: int i,
 *     active: boolean i%2==0, createdAt: Date(1700000000000 + i*1000), tags: List ["red","blue"],
 *     category: "books", score: int i*3, note: "a note about item "+i }      (fields in this order)
 *   pojo = item(7)
 *   list = java.util.ArrayList (written untyped) of item(0) .. item(99)
 *
 * Each encode op uses a fresh `new hessian.EncoderV2()` (no class definitions carried over);
 * each decode op a fresh DecoderV2 over the encoded bytes. Each of the four measurements warms up
 * for ~1 s, then runs for ~S s; the mean ns/op is reported.
 *
 * Usage: node bench.js [--seconds S]      (S defaults to 3)
 * Prints one JSON line:
 * {"tool":"hessian.js 2.11.0","node":"<version>","pojo":{"bytes":N,"encode_ns":X,"decode_ns":Y,
 *  "hex":"..."},"list":{"bytes":N,"encode_ns":X,"decode_ns":Y}}
 */

const assert = require('assert');
const hessian = require('hessian.js');
const hessianVersion = require('hessian.js/package.json').version;

function parseArgs(argv) {
  let seconds = 3;
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seconds') {
      seconds = Number(argv[++i]);
    } else if (a.startsWith('--seconds=')) {
      seconds = Number(a.slice('--seconds='.length));
    } else {
      throw new Error(`unknown argument: ${a}`);
    }
  }
  if (!(seconds > 0)) throw new Error('--seconds must be a positive number');
  return { seconds };
}

function item(i) {
  return {
    $class: 'org.apache.dubbo.bench.Item',
    $: {
      id: { $class: 'long', $: 1000 + i },
      name: `item-${i}`,
      price: { $class: 'double', $: 9.99 + i },
      quantity: { $class: 'int', $: i },
      active: i % 2 === 0,
      createdAt: new Date(1700000000000 + i * 1000),
      tags: ['red', 'blue'],
      category: 'books',
      score: { $class: 'int', $: i * 3 },
      note: `a note about item ${i}`,
    },
  };
}

function plainItem(i) {
  return {
    id: 1000 + i,
    name: `item-${i}`,
    price: 9.99 + i,
    quantity: i,
    active: i % 2 === 0,
    createdAt: new Date(1700000000000 + i * 1000),
    tags: ['red', 'blue'],
    category: 'books',
    score: i * 3,
    note: `a note about item ${i}`,
  };
}

const pojo = item(7);
const list = { $class: 'java.util.ArrayList', $: Array.from({ length: 100 }, (_, i) => item(i)) };

const encode = (v) => new hessian.EncoderV2().write(v).get();
const decode = (buf) => new hessian.DecoderV2(buf).read(false);

let sink = 0;

// Runs fn repeatedly for about `seconds`; returns mean ns/op. The clock is read once per batch;
// batches grow until one takes ~5 ms, so reading the clock costs nothing measurable.
function measure(fn, seconds) {
  const budget = BigInt(Math.round(seconds * 1e9));
  let batch = 1;
  let iterations = 0;
  const start = process.hrtime.bigint();
  let last = start;
  while (last - start < budget) {
    for (let k = 0; k < batch; k++) {
      sink ^= fn().length | 0;
    }
    iterations += batch;
    const now = process.hrtime.bigint();
    if (now - last < 5_000_000n && batch < 1 << 20) batch *= 2;
    last = now;
  }
  return Number(last - start) / iterations;
}

function bench(value, seconds, warmup) {
  const bytes = encode(value);
  const encodeOp = () => encode(value);
  const decodeOp = () => {
    const v = decode(bytes);
    return v.$ ? v.$ : v.length !== undefined ? v : [v];
  };
  measure(encodeOp, warmup);
  const encodeNs = measure(encodeOp, seconds);
  measure(decodeOp, warmup);
  const decodeNs = measure(decodeOp, seconds);
  return { bytes, encodeNs, decodeNs };
}

function main() {
  const { seconds } = parseArgs(process.argv);
  const warmup = Math.min(1, seconds);

  // Sanity checks (not printed): the bytes decode back to the values.
  const pojoBytes = encode(pojo);
  assert.deepStrictEqual(decode(pojoBytes), plainItem(7));
  assert.deepStrictEqual(
    decode(encode(list)),
    Array.from({ length: 100 }, (_, i) => plainItem(i))
  );
  assert.ok(pojoBytes.toString('hex').startsWith('43'), 'pojo should start with a class definition');

  const p = bench(pojo, seconds, warmup);
  const l = bench(list, seconds, warmup);
  const round = (x) => Math.round(x * 10) / 10;

  const out = {
    tool: `hessian.js ${hessianVersion}`,
    node: process.versions.node,
    pojo: {
      bytes: p.bytes.length,
      encode_ns: round(p.encodeNs),
      decode_ns: round(p.decodeNs),
      hex: p.bytes.toString('hex'),
    },
    list: {
      bytes: l.bytes.length,
      encode_ns: round(l.encodeNs),
      decode_ns: round(l.decodeNs),
    },
  };
  if (sink === 0.5) out.sink = sink; // never true; keeps results observable
  process.stdout.write(JSON.stringify(out) + '\n');
}

main();
