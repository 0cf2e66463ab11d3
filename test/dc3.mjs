import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, AckPolicy } from '@nats-io/jetstream';
const nc = await connect({ servers: '127.0.0.1:4222' });
const jsm = await jetstreamManager(nc);
await jsm.streams.add({ name: 'dctest_X', subjects: ['dctest.>'] });
await jsm.consumers.add('dctest_X', { durable_name: 'c', ack_policy: AckPolicy.Explicit, filter_subject: 'dctest.a' });
const js = jetstream(nc);
await js.publish('dctest.a', 'x');
const c = await js.consumers.get('dctest_X', 'c');
const it = await c.consume({ max_messages: 16 });
const mode = process.argv[2];
for await (const m of it) {
  console.log('first', m.info.deliveryCount, m.info.pending, m.info.streamSequence, m.info.deliverySequence);
  if (mode === 'nakfirst') {
    m.nak();
    await nc.flush();
    await it.close();
  } else {
    await it.close();
    m.nak();
  }
}
await new Promise((r) => setTimeout(r, 200));
console.log(
  (await jsm.consumers.info('dctest_X', 'c')).num_redelivered,
  (await jsm.consumers.info('dctest_X', 'c')).delivered,
);
const m = await c.next({ expires: 5000 });
console.log('second', m?.info.deliveryCount, m?.info.deliverySequence);
m?.ack();
await jsm.streams.delete('dctest_X');
await nc.close();
