'use strict';
/*
 * Golden Hessian 2.0 vectors written by hessian.js 2.11.0 (the cases of peers/golden-cases.md).
 *
 * Usage: node golden.js > out.json
 * Prints one JSON object {"<case name>": "<lowercase hex>", ...}, keys in the order of
 * golden-cases.md. Each case is written alone by a fresh `new hessian.EncoderV2()`, so no class
 * definition, type or reference is shared between cases. Every output is then decoded again with
 * hessian.js's DecoderV2 and compared with the input (a failure goes to stderr and exits 1).
 *
 * Left out: none. All cases of golden-cases.md can be expressed with hessian.js 2.11.0. Notes on
 * the ones that need care:
 *   - typed_map: a `{$class: 'java.util.TreeMap', $: {...}}` value is written by default as an
 *     OBJECT (class definition 'C' with fields a, b), which is not what Java writes for a map. The
 *     encoder's documented `mapTypes` option declares the class a map, and it is then written as
 *     `M` + type + entries + `Z`, like Java's MapSerializer. That option is used for this case only.
 *   - map_int_keys: a JS `Map` with the number key 1 is written with a real int key (0x91); plain
 *     JS objects would turn every key into a string.
 *   - shared_user, self_ref: hessian.js tracks maps, lists and objects by identity and writes a
 *     back-reference `Q` (0x51) for the repeated instance (checked below): `51 91` (the list is
 *     ref 0, the user ref 1) and `51 90` (the node itself, ref 0).
 *   - enum_red, enum_list: written as an object of the enum's class with the one field `name`,
 *     which is also how Java's EnumSerializer writes enums.
 *   - string_array uses the Java wire type `[string`, int_array `[int`, long_array `[long`.
 *   - string_emoji, string_emoji_at_chunk: hessian.js writes each UTF-16 unit separately (a
 *     surrogate pair is two 3-byte sequences, CESU-8 style, like Java), and never ends a chunk on a
 *     high surrogate (the first chunk of string_emoji_at_chunk is 32767 units long).
 *   - binary_5000: hessian.js cuts binaries into 4093-byte chunks (`41 0f fd` ... then a final
 *     short chunk), while Java's Hessian2Output writes one `42 13 88` chunk here. Both are valid
 *     Hessian 2.0; decoders must accept both.
 *   - long_max, long_min are given as decimal strings (the encoder converts them with `long`),
 *     since a JS number cannot hold them exactly.
 */

const hessian = require('hessian.js');
const fs = require('fs');
const path = require('path');

// ---------------------------------------------------------------- typed value helpers
const int = (v) => ({ $class: 'int', $: v });
const long = (v) => ({ $class: 'long', $: v });
const double = (v) => ({ $class: 'double', $: v });
const list = (items) => ({ $class: 'java.util.ArrayList', $: items }); // written untyped, like Java

function user(id, name, age, email) {
  // Field order = the Java class's declared order.
  return {
    $class: 'org.apache.dubbo.demo.User',
    $: { id: long(id), name, age: int(age), email },
  };
}

const color = (name) => ({ $class: 'org.apache.dubbo.demo.Color', $: { name } });

function bytes(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

const a = (n) => 'a'.repeat(n);

// ---------------------------------------------------------------- the cases, in file order
// Each entry: [name, () => value, encoder options (optional)].
const cases = [];
const add = (name, make, options) => cases.push([name, make, options]);

add('null', () => null);
add('true', () => true);
add('false', () => false);

for (const [name, v] of [
  ['int_0', 0],
  ['int_1', 1],
  ['int_47', 47],
  ['int_-16', -16],
  ['int_48', 48],
  ['int_-17', -17],
  ['int_300', 300],
  ['int_2047', 2047],
  ['int_-2048', -2048],
  ['int_2048', 2048],
  ['int_-2049', -2049],
  ['int_262143', 262143],
  ['int_-262144', -262144],
  ['int_262144', 262144],
  ['int_-262145', -262145],
  ['int_max', 2147483647],
  ['int_min', -2147483648],
]) {
  add(name, () => int(v));
}

for (const [name, v] of [
  ['long_0', 0],
  ['long_15', 15],
  ['long_-8', -8],
  ['long_16', 16],
  ['long_-9', -9],
  ['long_2047', 2047],
  ['long_-2048', -2048],
  ['long_2048', 2048],
  ['long_262143', 262143],
  ['long_-262144', -262144],
  ['long_262144', 262144],
  ['long_2147483647', 2147483647],
  ['long_-2147483648', -2147483648],
  ['long_2147483648', 2147483648],
  ['long_max', '9223372036854775807'],
  ['long_min', '-9223372036854775808'],
]) {
  add(name, () => long(v));
}

for (const [name, v] of [
  ['double_0', 0],
  ['double_1', 1],
  ['double_-1', -1],
  ['double_127', 127],
  ['double_-128', -128],
  ['double_128', 128],
  ['double_32767', 32767],
  ['double_-32768', -32768],
  ['double_32768', 32768],
  ['double_1.5', 1.5],
  ['double_10.1', 10.1],
  ['double_-0.001', -0.001],
  ['double_pi', Math.PI],
  ['double_1e300', 1e300],
  ['double_-2.5e-10', -2.5e-10],
  ['double_0.1', 0.1],
]) {
  add(name, () => double(v));
}

for (const ms of [894621091000, 894621060000, 0, -1000]) {
  add(`date_${ms}`, () => new Date(ms));
}

add('string_empty', () => '');
add('string_hello', () => 'hello');
for (const n of [31, 32, 1023, 1024, 32768, 32769, 65536]) {
  add(`string_${n}`, () => a(n));
}
add('string_chinese', () => '中文 Chinese');
add('string_emoji', () => 'smile \u{1F600}!');
add('string_emoji_at_chunk', () => a(32767) + '\u{1F600}' + 'b');

for (const n of [0, 15, 16, 1023, 1024, 5000]) {
  add(`binary_${n}`, () => bytes(n));
}

add('list_empty', () => list([]));
add('list_mixed', () => list([int(1), int(2), 'foo']));
add('list_8', () => list(['1', '2', '3', '4', '5', '6', '7', '8']));
add('int_array', () => ({ $class: '[int', $: [int(1), int(2), int(3)] }));
add('long_array', () => ({ $class: '[long', $: [long(1), long(2), long(3)] }));
add('string_array', () => ({ $class: '[string', $: ['a', 'b'] }));
add('linked_list', () => ({ $class: 'java.util.LinkedList', $: ['x', 'y'] }));
add('map_one', () => ({ a: int(1) }));
add('map_int_keys', () => new Map([[1, 'one']]));
add('typed_map', () => ({ $class: 'java.util.TreeMap', $: { a: int(1), b: int(2) } }), {
  mapTypes: { 'java.util.TreeMap': true },
});
add('user', () => user(7, 'alice', 30, 'a@example.com'));
add('user_null_email', () => user(7, 'alice', 30, null));
add('two_users', () => list([user(1, 'u1', 21, 'u1@x'), user(2, 'u2', 22, 'u2@x')]));
add('shared_user', () => {
  const u = user(1, 'u1', 21, 'u1@x');
  return list([u, u]);
});
add('self_ref', () => {
  const node = { $class: 'org.apache.dubbo.demo.Node', $: { name: 'loop', next: null } };
  node.$.next = node;
  return node;
});
add('enum_red', () => color('RED'));
add('enum_list', () => list([color('BLUE'), color('RED')]));
add('big_decimal', () => ({
  $class: 'java.math.BigDecimal',
  $: { value: '12345678901234567890.0123456789' },
}));
add('nested', () => ({
  $class: 'org.apache.dubbo.demo.Order',
  $: {
    id: long(99),
    owner: user(7, 'alice', 30, 'a@example.com'),
    items: list(['pen', 'ink']),
    tags: { k: 'v' },
  },
}));

// ---------------------------------------------------------------- encode
function encode(value, options) {
  return new hessian.EncoderV2(options).write(value).get();
}

// Known bytes (the same as Caucho Hessian's).
const KNOWN = [
  ['"hello"', 'hello', '0568656c6c6f'],
  ['int 300', int(300), 'c92c'],
  ['long 5', long(5), 'e5'],
  ['double 1.5', double(1.5), '5f000005dc'],
];

// ---------------------------------------------------------------- sanity check by decoding
// Normalize both the input value and the decoded value to comparable JSON.
function norm(v, stack = []) {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return { date: v.getTime() };
  if (Buffer.isBuffer(v)) return { bin: v.toString('hex') };
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return String(v);
  if (typeof v !== 'object') return String(v);
  if (stack.includes(v)) return '<cycle>';
  const next = stack.concat([v]);
  if (v instanceof Map) {
    return { map: [...v].map(([k, val]) => [norm(k, next), norm(val, next)]) };
  }
  if (Array.isArray(v)) return v.map((x) => norm(x, next));
  if (typeof v.$class === 'string' && Object.prototype.hasOwnProperty.call(v, '$')) {
    return norm(v.$, next);
  }
  if (typeof v.toString === 'function' && 'high' in v && 'low' in v) return v.toString(); // Long
  const o = {};
  for (const k of Object.keys(v)) o[k] = norm(v[k], next);
  return o;
}

function sameAfterDecode(name, value, buf) {
  let decoded = hessian.decode(buf, '2.0');
  let want = value;
  if (name === 'map_int_keys' && !(decoded instanceof Map)) {
    // hessian.js decodes untyped maps to plain objects, so the int key comes back as "1".
    want = { 1: 'one' };
  }
  const x = JSON.stringify(norm(want));
  const y = JSON.stringify(norm(decoded));
  return x === y ? null : `decoded ${y} != encoded ${x}`;
}

function main() {
  let failed = false;
  const fail = (msg) => {
    failed = true;
    process.stderr.write(`golden.js: ${msg}\n`);
  };

  for (const [what, value, hex] of KNOWN) {
    const got = encode(value).toString('hex');
    if (got !== hex) fail(`${what}: got ${got}, want ${hex}`);
  }

  const out = {};
  for (const [name, make, options] of cases) {
    const value = make();
    const buf = encode(value, options);
    out[name] = buf.toString('hex');
    const problem = sameAfterDecode(name, make(), buf);
    if (problem) fail(`${name}: ${problem}`);
  }

  // Back-references must really be there.
  if (!out.shared_user.endsWith('5191')) fail(`shared_user: no back-reference: ${out.shared_user}`);
  if (!out.self_ref.endsWith('5190')) fail(`self_ref: no back-reference: ${out.self_ref}`);
  if (!out.map_int_keys.startsWith('4891')) fail(`map_int_keys: key not an int: ${out.map_int_keys}`);

  // Every name must be a case of golden-cases.md (when the file is next door).
  const md = path.join(__dirname, '..', 'golden-cases.md');
  if (fs.existsSync(md)) {
    const text = fs.readFileSync(md, 'utf8');
    const listed = new Set();
    for (const line of text.split('\n')) {
      if (!line.startsWith('| `')) continue;
      const first = line.split('|')[1];
      for (const m of first.matchAll(/`([^`]+)`/g)) listed.add(m[1]);
    }
    for (const name of Object.keys(out)) {
      if (!listed.has(name)) fail(`${name} is not a case of golden-cases.md`);
    }
    for (const name of listed) {
      if (!(name in out)) process.stderr.write(`golden.js: note: case ${name} left out\n`);
    }
  }

  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  if (failed) process.exitCode = 1;
}

main();
