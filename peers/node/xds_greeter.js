#!/usr/bin/env node
// A gRPC Greeter for xDS tests, on @grpc/grpc-js.
//   node xds_greeter.js server NAME       serves Greeter on a free port; prints "LISTENING <port>"
//   node xds_greeter.js client TARGET N   (with GRPC_XDS_BOOTSTRAP set) registers @grpc/grpc-js-xds,
//                                         calls SayHello N times on TARGET (e.g. xds:///greeter) and
//                                         prints one JSON line: {"ok": k, "answers": {...}, "errors": [...]}
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const definition = protoLoader.loadSync(path.join(__dirname, 'greeter.proto'));
const greeter = grpc.loadPackageDefinition(definition).greeter;

function server(name) {
  const s = new grpc.Server();
  s.addService(greeter.Greeter.service, {
    SayHello(call, callback) {
      callback(null, { message: `Hello ${call.request.name} from ${name}` });
    },
  });
  s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      console.error(err);
      process.exit(1);
    }
    console.log(`LISTENING ${port}`);
  });
}

async function client(target, n) {
  require('@grpc/grpc-js-xds').register();
  const c = new greeter.Greeter(target, grpc.credentials.createInsecure());
  const answers = {};
  const errors = [];
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const deadline = new Date(Date.now() + 10000);
    await new Promise((resolve) => {
      c.SayHello({ name: `call${i}` }, { deadline }, (err, reply) => {
        if (err) {
          errors.push(`${err.code}: ${err.details}`);
        } else {
          ok += 1;
          const from = reply.message.split(' from ')[1];
          answers[from] = (answers[from] || 0) + 1;
        }
        resolve();
      });
    });
  }
  console.log(JSON.stringify({ ok, answers, errors }));
  c.close();
  process.exit(0);
}

const [mode, a, b] = process.argv.slice(2);
if (mode === 'server') server(a || 'greeter');
else if (mode === 'client') client(a, Number(b || 1));
else {
  console.error('usage: xds_greeter.js server NAME | client TARGET N');
  process.exit(2);
}
