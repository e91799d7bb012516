'use strict';
/*
 * A Dubbo3 Triple provider for a service without IDL, the way Java Dubbo serves one: each call
 * is a gRPC unary call on `/{interface}/{method}` whose message is a TripleRequestWrapper
 * (every argument hessian2-encoded on its own, with its Java class name), answered with a
 * TripleResponseWrapper holding the hessian2-encoded result. Built from third-party parts only:
 * @grpc/grpc-js for HTTP/2 and gRPC, @grpc/proto-loader for the wrapper messages
 * (peers/proto/triple_wrapper.proto), hessian.js 2.11 for hessian2.
 *
 * It serves org.apache.dubbo.demo.DemoService:
 *   sayHello(String)       -> "Hello <name> [<argTypes>; <serializeType>]" (shows the wire)
 *   add(int, int)          -> int
 *   echoUser(User)         -> the User back (typed: long id, int age)
 *   listUsers(int)         -> List<User> of that many users
 *   fail(String)           -> gRPC status UNKNOWN with message "no <arg>" (as Java reports a throw)
 *   slow(int ms)           -> "slept <ms>" after that long
 *   traceContext()         -> {traceparent, tracestate}: the W3C headers the call carried
 * Anything else: grpc-js's UNIMPLEMENTED.
 *
 * Usage: node triple_wrapper_provider.js PORT   (prints "LISTENING <port>")
 */

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const hessian = require('hessian.js');

const SERVICE = 'org.apache.dubbo.demo.DemoService';
const USER = 'org.apache.dubbo.demo.User';

const definition = protoLoader.loadSync(
  path.join(__dirname, '..', 'proto', 'triple_wrapper.proto'),
  { keepCase: true, defaults: true },
);
const call = definition['org.apache.dubbo.triple.Wrapped'].Call;

const long = (v) => ({ $class: 'long', $: Number(v) });
const int = (v) => ({ $class: 'int', $: Number(v) });
const user = (u) => ({
  $class: USER,
  $: { id: long(u.id), name: u.name, age: int(u.age), email: u.email },
});

const methods = {
  sayHello: (wrapper, [name]) => ({
    type: 'java.lang.String',
    value: `Hello ${name} [${wrapper.argTypes.join(',')}; ${wrapper.serializeType}]`,
  }),
  add: (_, [a, b]) => {
    if (typeof a !== 'number' || typeof b !== 'number') throw new Error('add takes two ints');
    return { type: 'int', value: int(a + b) };
  },
  echoUser: (_, [u]) => ({ type: USER, value: user(u) }),
  listUsers: (_, [n]) => ({
    type: 'java.util.List',
    value: {
      $class: 'java.util.ArrayList',
      $: Array.from({ length: n }, (_, i) => user({ id: i + 1, name: `user${i + 1}`, age: 20 + i, email: `u${i + 1}@example.org` })),
    },
  }),
  fail: (_, [what]) => { throw new Error(`no ${what}`); },
  traceContext: (_w, _args, metadata) => ({
    type: 'java.util.Map',
    value: {
      traceparent: metadata.get('traceparent')[0] || null,
      tracestate: metadata.get('tracestate')[0] || null,
    },
  }),
  slow: async (_, [ms]) => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return { type: 'java.lang.String', value: `slept ${ms}` };
  },
};

function handler(fn) {
  return async (unary, callback) => {
    const wrapper = unary.request;
    try {
      if (wrapper.serializeType !== 'hessian4' && wrapper.serializeType !== 'hessian2') {
        throw new Error(`serialization ${wrapper.serializeType} is not supported`);
      }
      const args = wrapper.args.map((bytes) => hessian.decode(bytes, '2.0'));
      const { type, value } = await fn(wrapper, args, unary.metadata);
      callback(null, {
        serializeType: 'hessian4',
        type,
        data: hessian.encode(value, '2.0'),
      });
    } catch (err) {
      callback({ code: grpc.status.UNKNOWN, details: err.message });
    }
  };
}

const server = new grpc.Server();
for (const [name, fn] of Object.entries(methods)) {
  server.register(`/${SERVICE}/${name}`, handler(fn), call.responseSerialize, call.requestDeserialize, 'unary');
}
const port = process.argv[2] || '0';
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    process.stderr.write(`bind failed: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`LISTENING ${bound}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.forceShutdown());
