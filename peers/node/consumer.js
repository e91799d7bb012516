'use strict';
/*
 * Dubbo2 consumer scenarios against a provider of the demo service (peers/README.md), run through
 * one of two third-party npm clients, connected directly (no registry):
 *   - apache-dubbo-consumer 4.0.0: DubboDirectlyInvoker, timeout in milliseconds; sends dubbo
 *     version '2.0.2' (the library's DEFAULT_DUBBO_PROTOCOL_VERSION, what it sends when a registry
 *     URL carries none);
 *   - dubbo2.js 2.3.9: DirectlyDubbo, timeout in seconds; sends dubbo version '2.0.0' (the version
 *     used throughout its README; it has no default of its own).
 * Both send the interface version '0.0.0' (what Java Dubbo sends for "no version").
 *
 * Usage: node consumer.js --lib <apache-dubbo-consumer|dubbo2.js> --port N [--host 127.0.0.1]
 *                         [--dubbo-version V]
 * Prints one JSON object on stdout: {"sayHello", "add", "echoUser", "listUsers", "fail", "now",
 * "concurrent"}; a scenario whose call failed holds {"error": "<message>"}.
 * Exit code 0 when the script ran to the end, non-zero only on a crash.
 *
 * Both libraries decode responses inside their socket 'data' handlers; a malformed response (for
 * example flag 3/4/5 without the trailing attachments map) throws there, out of reach of the call's
 * promise. Such errors are logged to stderr and the call then ends with the library's timeout error.
 */

const TIMEOUT_MS = 5000;

process.on('uncaughtException', (err) => {
  process.stderr.write(`consumer: error inside the library: ${err && err.stack ? err.stack : err}\n`);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`consumer: unhandled rejection: ${err && err.stack ? err.stack : err}\n`);
});
const SERVICE = 'org.apache.dubbo.demo.DemoService';
const USER_CLASS = 'org.apache.dubbo.demo.User';

function parseArgs(argv) {
  const out = { lib: null, port: null, host: '127.0.0.1', dubboVersion: null };
  for (let i = 2; i < argv.length; i++) {
    let a = argv[i];
    let v;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    } else {
      v = argv[++i];
    }
    switch (a) {
      case '--lib':
        out.lib = v;
        break;
      case '--port':
        out.port = Number(v);
        break;
      case '--host':
        out.host = v;
        break;
      case '--dubbo-version':
        out.dubboVersion = v;
        break;
      default:
        throw new Error(`unknown argument: ${a}`);
    }
  }
  if (out.lib !== 'apache-dubbo-consumer' && out.lib !== 'dubbo2.js') {
    throw new Error('--lib must be apache-dubbo-consumer or dubbo2.js');
  }
  if (!Number.isInteger(out.port) || out.port <= 0 || out.port > 65535) {
    throw new Error('--port must be an integer in 1..65535');
  }
  return out;
}

// Hessian-typed arguments. Both libraries build the parameter descriptor from `$class`
// (int -> I, other classes -> Lpkg/Class;), and only accept {$class, $} arguments.
const jString = (v) => ({ $class: 'java.lang.String', $: v });
const jInt = (v) => ({ $class: 'int', $: v });
const jLong = (v) => ({ $class: 'long', $: v });
const jUser = (u) => ({
  $class: USER_CLASS,
  $: { id: jLong(u.id), name: jString(u.name), age: jInt(u.age), email: jString(u.email) },
});

// The demo service's methods: each returns the argument list the library sends.
const methods = {
  sayHello: (name) => [jString(name)], //            Ljava/lang/String;
  add: (a, b) => [jInt(a), jInt(b)], //              II
  echoUser: (u) => [jUser(u)], //                    Lorg/apache/dubbo/demo/User;
  listUsers: (n) => [jInt(n)], //                    I
  fail: (message) => [jString(message)], //          Ljava/lang/String;
  now: () => [], //                                  (empty)
};

function connect(opts) {
  const address = `${opts.host}:${opts.port}`;
  if (opts.lib === 'apache-dubbo-consumer') {
    const { DubboDirectlyInvoker } = require('apache-dubbo-consumer');
    const invoker = DubboDirectlyInvoker.from({
      dubboHost: address,
      dubboVersion: opts.dubboVersion || '2.0.2',
      dubboInvokeTimeout: TIMEOUT_MS, // milliseconds
    });
    const proxy = invoker.proxyService({
      dubboInterface: SERVICE,
      version: '0.0.0',
      methods,
    });
    return {
      proxy,
      close: () => invoker.close(),
    };
  }
  const { DirectlyDubbo } = require('dubbo2.js');
  const dubbo = DirectlyDubbo.from({
    dubboAddress: address,
    dubboVersion: opts.dubboVersion || '2.0.0',
    dubboInvokeTimeout: TIMEOUT_MS / 1000, // seconds
  });
  const proxy = dubbo.proxyService({
    dubboInterface: SERVICE,
    version: '0.0.0',
    methods,
  });
  return {
    proxy,
    // DirectlyDubbo has no close(); destroy its socket and stop its reconnect loop.
    close: () => {
      const w = dubbo._socketWorker;
      if (w) {
        w._retry = 0;
        clearInterval(w._heartBeatTimer);
        if (w._socket) w._socket.destroy();
      }
    },
  };
}

// Decoded hessian values -> plain JSON.
function plain(v) {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.getTime();
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (v instanceof Error) return { error: errorText(v) };
  if (typeof v === 'bigint') return Number(v);
  if (typeof v !== 'object') return v;
  if (typeof v.toNumber === 'function' && 'high' in v && 'low' in v) return v.toNumber(); // Long
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) {
    const o = {};
    for (const [k, val] of v) o[String(k)] = plain(val);
    return o;
  }
  const o = {};
  for (const k of Object.keys(v)) o[k] = plain(v[k]);
  return o;
}

function errorText(err) {
  if (err === null || err === undefined) return 'unknown error';
  if (typeof err === 'string') return err;
  if (err instanceof Error || typeof err.message === 'string') {
    return err.message === undefined || err.message === '' ? String(err.name || err) : err.message;
  }
  try {
    return JSON.stringify(err);
  } catch (_) {
    return String(err);
  }
}

// Both libraries resolve every call to {res, err} (their `go` wrapper) instead of rejecting.
async function call(fn, convert = plain) {
  try {
    const { res, err } = await fn();
    if (err) return { error: errorText(err) };
    return convert(res);
  } catch (err) {
    return { error: errorText(err) };
  }
}

async function main() {
  const opts = parseArgs(process.argv);
  const { proxy, close } = connect(opts);
  const out = {};

  out.sayHello = await call(() => proxy.sayHello('world'));
  out.add = await call(() => proxy.add(2, 3));
  out.echoUser = await call(() =>
    proxy.echoUser({ id: 7, name: 'alice', age: 30, email: 'a@example.com' })
  );
  out.listUsers = await call(() => proxy.listUsers(3));
  out.fail = await call(
    () => proxy.fail('boom'),
    // A value here means the provider did not signal an exception.
    (res) => ({ error: null, unexpected_result: plain(res) })
  );
  out.now = await call(() => proxy.now());

  const calls = [];
  for (let i = 0; i < 20; i++) calls.push(call(() => proxy.sayHello(`c${i}`)));
  out.concurrent = await Promise.all(calls);

  process.stdout.write(JSON.stringify(out) + '\n', () => {
    try {
      close();
    } catch (_) {
      // ignore
    }
    process.exit(0);
  });
}

main().catch((err) => {
  process.stderr.write(`consumer crashed: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
