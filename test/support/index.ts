export { freePort, waitForPort } from './ports.js';
export { waitFor } from './wait.js';
export {
  connectTestClient,
  deleteStreams,
  SHARED_NATS_URL,
  startNatsServer,
  uniquePrefix,
  type PrivateNats,
} from './nats.js';
export { createTestDatabase, SHARED_PG_URL, type TestDatabase } from './postgres.js';
export { REPO_ROOT, startService, type LogLine, type ServiceProcess } from './services.js';
export { readRecords, recordFilePath } from './records.js';
export { startRedisServer, type PrivateRedis } from './redis.js';
export { startFaultProxy, type FaultProxy } from './proxy.js';
export { consumersSettled, streamMessages } from './streams.js';
