#!/usr/bin/env node
/**
 * The reference route of the gateway benchmark: a Fastify app whose only route publishes
 * to JetStream and answers 202 with the sequence, on the same connection settings as the
 * gateway (`connectionOptionsFromEnv` and `noAsyncTraces`). Started by the benchmark as its own process:
 * `PORT=… NATS_URL=… node packages/bench/dist/minimal-route.js`.
 */
import { connectionOptionsFromEnv } from '@jetactor/actor-runtime/client';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import Fastify from 'fastify';

// The gateway's connection settings, noAsyncTraces included (runGateway sets it).
const nc = await connect({ ...connectionOptionsFromEnv(process.env, 'bench-minimal-route'), noAsyncTraces: true });
const js = jetstream(nc);
const app = Fastify({ logger: false });
const one = new TextEncoder().encode('1');

app.post<{ Params: { key: string } }>('/signal/:key', async (req, reply) => {
  const ack = await js.publish(`actors.counter.${req.params.key}.add`, one);
  return reply.code(202).send({ signaled: 'add', type: 'counter', key: req.params.key, seq: ack.seq });
});
app.get('/health', () => ({ ok: true }));

await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
process.stdout.write(`listening on ${String(process.env.PORT)}\n`);
const stop = () => {
  void app.close().then(() => nc.drain()).finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
