'use strict';
/*
 * Dubbo2 provider for the demo service contract of peers/README.md, served by the npm package
 * `apache-dubbo-service` 0.0.1 (Apache dubbo-js). It is a third-party peer: the point is to run
 * the package's own framing / hessian2 / dispatch code, so nothing here patches its protocol
 * handling. Only two things are replaced:
 *   - the registry: a no-op object (the package insists on one; we register nowhere);
 *   - the listen step: the package picks a random port in 20888..30000 and binds every interface;
 *     we bind 127.0.0.1 on the port given by --port (0 = let the OS choose).
 *
 * Usage: node provider.js --port N
 * Prints exactly one line `LISTENING <port>` on stdout once connections are accepted.
 * Exits on SIGTERM / SIGINT.
 *
 * How the package dispatches (apache-dubbo-service 0.0.1 + apache-dubbo-serialization 0.0.2):
 *   - the request body is read as: dubbo version, path, version, method name, parameter
 *     descriptor, then `desc.split(';').filter(Boolean).length` arguments, then one more value
 *     taken as the attachments map (merged over path/version only if it is an object);
 *   - the service is found by attachments `path` + method name, `group` ('' by default) and
 *     `version`, which must equal '0.0.0' exactly (a null/empty version is not found);
 *   - the method is called as methods[name](...args, ctx) (the package's Context is appended);
 *   - a falsy return value (0, false, '', null) is sent as the NULL-value flag;
 *   - a thrown error / rejection is sent as flag 0 (or 3 for dubbo version 2.0.2..2.0.99) with
 *     `err.message` as a plain hessian string, not a Throwable object;
 *   - request dubbo version in [2.0.2, 2.0.99] gets the *_WITH_ATTACHMENTS flags (3/4/5) and an
 *     untyped map {"dubbo": "2.0.2"} after the value; anything else gets 0/1/2.
 *
 * What happens with add(int, int) (descriptor `II`): the package splits `II` on ';' and gets ONE
 * parameter type, so it reads only the first int as an argument. The second int (3) is then read
 * as "the attachments", is not an object, and is ignored, so the real attachments map that follows
 * is never read: path/version come from the body only. If the body's version is '0.0.0' the service
 * is found and `add` is called as add(2, <Context>): the second operand is the package's Context
 * object, not a number. Computing `a + b` would give the string "2[object Object]"; returning it as
 * a typed int would make the response encoder throw inside the package's socket handler (an
 * unhandled rejection, no response at all). So `add` below checks its second operand and, when it
 * is not a number, throws an error naming the package bug: the caller gets an exception response
 * ("add: second int argument lost ..."). If the body's version is null or '' (dubbo2.js without a
 * `version`, or a client that only puts the version in the attachments), the request is answered
 * with status 60 SERVICE_NOT_FOUND instead. A single-int call like listUsers(I) is unaffected.
 */

const net = require('net');
const { DubboService } = require('apache-dubbo-service');

const SERVICE = 'org.apache.dubbo.demo.DemoService';
const USER_CLASS = 'org.apache.dubbo.demo.User';

function log(...args) {
  process.stderr.write(`[provider ${process.pid}] ${args.join(' ')}\n`);
}

// The package has known failure modes (response encode errors and malformed frames surface as
// rejections of its async socket handler). Keep serving whatever happens.
process.on('unhandledRejection', (reason) => {
  log('unhandledRejection:', reason && reason.stack ? reason.stack : String(reason));
});
process.on('uncaughtException', (err) => {
  log('uncaughtException:', err && err.stack ? err.stack : String(err));
});

function parseArgs(argv) {
  const out = { port: 0 };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') {
      out.port = Number(argv[++i]);
    } else if (a.startsWith('--port=')) {
      out.port = Number(a.slice('--port='.length));
    } else {
      throw new Error(`unknown argument: ${a}`);
    }
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) {
    throw new Error('--port must be an integer in 0..65535');
  }
  return out;
}

// ---------------------------------------------------------------- typed hessian values
const jInt = (v) => ({ $class: 'int', $: v });
const jLong = (v) => ({ $class: 'long', $: v });

function user(id, name, age, email) {
  // Field order = the Java class's declared order: id, name, age, email.
  return {
    $class: USER_CLASS,
    $: {
      id: jLong(id),
      name: name == null ? null : String(name),
      age: jInt(age),
      email: email == null ? null : String(email),
    },
  };
}

function isContext(v) {
  return v !== null && typeof v === 'object' && 'request' in v && 'attachments' in v && 'body' in v;
}

// ---------------------------------------------------------------- the demo service
const demoService = {
  dubboInterface: SERVICE,
  methods: {
    sayHello(name) {
      return `Hello, ${name}`;
    },

    add(a, b) {
      if (typeof a !== 'number' || typeof b !== 'number') {
        const what = isContext(b) ? 'the package Context object' : typeof b;
        throw new Error(
          `add: second int argument lost (apache-dubbo-service 0.0.1 splits the descriptor 'II' ` +
            `on ';' and reads one argument; got a=${JSON.stringify(a)}, b=${what})`
        );
      }
      // Note: a sum of 0 would go out as the NULL-value flag (package bug for falsy results).
      return jInt((a + b) | 0);
    },

    echoUser(u) {
      if (u === null || typeof u !== 'object') {
        throw new Error(`echoUser: expected an ${USER_CLASS} object, got ${JSON.stringify(u)}`);
      }
      return user(toNumber(u.id), u.name, toNumber(u.age) + 1, u.email);
    },

    listUsers(n) {
      const count = toNumber(n);
      if (!Number.isInteger(count) || count < 0) {
        throw new Error(`listUsers: bad count ${JSON.stringify(n)}`);
      }
      const users = [];
      for (let i = 0; i < count; i++) {
        users.push(user(i, `user${i}`, 20 + i, `user${i}@example.com`));
      }
      // java.util.ArrayList: hessian.js writes it as an untyped list, like Java does.
      return { $class: 'java.util.ArrayList', $: users };
    },

    fail(message) {
      // The contract says IllegalArgumentException(message). The package can only send
      // `err.message` as a plain string, so the class name does not reach the wire.
      const err = new Error(String(message));
      err.name = 'java.lang.IllegalArgumentException';
      throw err;
    },

    now() {
      return new Date();
    },

    // Returns its argument as the package decoded it. The package reads arguments without type
    // information, so class names are gone: a POJO, BigDecimal or enum comes back as a map of its
    // fields (`{"value": "1.5"}`, `{"name": "RED"}`), a typed list or set as a plain list. What
    // comes back shows what this third-party decoder made of the bytes the caller sent.
    // The W3C trace context the caller sent, as the package received it among the request's
    // attachments (no arguments: the package then reads the attachments map right away;
    // `ctx.attachments` are the response's, the request's are `ctx.request.attachment`).
    traceContext(ctx) {
      const a = (isContext(ctx) && ctx.request && ctx.request.attachment) || {};
      return { traceparent: a.traceparent || null, tracestate: a.tracestate || null };
    },

    echo(value) {
      if (isContext(value)) {
        throw new Error('echo: no argument received');
      }
      return value;
    },
  },
};

function toNumber(v) {
  if (typeof v === 'number') return v;
  if (v && typeof v.toNumber === 'function') return v.toNumber(); // hessian.js Long
  if (typeof v === 'string' && v.trim() !== '') return Number(v); // unsafe longs come as strings
  return v;
}

// ---------------------------------------------------------------- registry and server
const noopRegistry = {
  ready: () => Promise.resolve(),
  registerServices: () => Promise.resolve(),
  getClient: () => null,
  close: () => {},
};

function main() {
  const { port } = parseArgs(process.argv);

  const service = DubboService.from({
    registry: noopRegistry,
    services: { demoService },
  });

  // DubboService's constructor schedules `this.listen()` on the next tick; replace that instance
  // method before it runs. Same steps as the package's own listen (server with the package's
  // socket handler, then registerServices() which resolves ready()), but bound to 127.0.0.1 on
  // the requested port, and no retry on a random other port.
  service.listen = async () => {
    service.server = net
      .createServer(service.handleSocketRequest)
      .on('error', (err) => {
        log(`listen 127.0.0.1:${port} failed:`, err.message);
        process.exit(1);
      })
      .listen(port, '127.0.0.1', () => {
        service.port = service.server.address().port;
        service.retry.reset();
        service.registerServices().catch((err) => {
          log('registerServices failed:', err && err.stack ? err.stack : String(err));
          process.exit(1);
        });
      });
  };

  service.ready().then(() => {
    process.stdout.write(`LISTENING ${service.getPort()}\n`);
  });

  const stop = (sig) => {
    log(`${sig}, exiting`);
    try {
      service.server && service.server.close();
    } catch (_) {
      // ignore
    }
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

try {
  main();
} catch (err) {
  log(err && err.stack ? err.stack : String(err));
  process.exit(2);
}
