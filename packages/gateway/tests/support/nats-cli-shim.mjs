#!/usr/bin/env node
// The part of the `nats` CLI the docs' examples use, for docs-examples.test.ts (the real CLI
// is not installed where tests run): `nats pub <subject> <payload> [-H 'Name:value' …]` and
// `nats req …` (prints the reply's payload). Connects to NATS_URL.
import { connect } from '@nats-io/transport-node';
import { headers as natsHeaders } from '@nats-io/nats-core';

const [cmd, ...rest] = process.argv.slice(2);
const args = [];
const hdrs = [];
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '-H' || rest[i] === '--header') hdrs.push(rest[++i] ?? '');
  else args.push(rest[i]);
}
if ((cmd !== 'pub' && cmd !== 'req') || args.length < 1) {
  console.error(`nats shim: only 'pub' and 'req' <subject> [payload] [-H Name:value] are supported, got: ${process.argv.slice(2).join(' ')}`);
  process.exit(2);
}
const [subject, payload = ''] = args;
const h = natsHeaders();
for (const line of hdrs) {
  const at = line.indexOf(':');
  h.append(line.slice(0, at).trim(), line.slice(at + 1).trim());
}
const nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
try {
  const opts = hdrs.length > 0 ? { headers: h } : {};
  if (cmd === 'pub') {
    nc.publish(subject, payload, opts);
    await nc.flush();
  } else {
    const reply = await nc.request(subject, payload, { ...opts, timeout: 10_000 });
    console.log(reply.string());
  }
} finally {
  await nc.close();
}
