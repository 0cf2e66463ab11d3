export {
  createCompletionStore,
  type CompletionRecord,
  type CompletionStore,
  type RecordOutcome,
} from './completions.js';
export { connectAndProvision, logProvisioned } from './bootstrap.js';
export { connectNats, natsConnectionOptions, type NatsSettings } from './connection.js';
export { compareVersions, MIN_NATS_SERVER, TESTED_NATS_SERVER, unsupportedServerReason } from './server-version.js';
export { createUuidV7 } from './ids.js';
export { redactUrlCredentials, redactUrls } from './redact.js';
export {
  createHeaders,
  DEAD_LETTER_REASONS,
  H,
  HeaderError,
  headerBytes,
  jobIdOf,
  readAttempt,
  headersToObject,
  parseRfc3339,
  readDeadLetterHeaders,
  readJobHeaders,
  writeDeadLetterHeaders,
  writeJobHeaders,
  type DeadLetterHeaders,
  type DeadLetterReason,
  type JobHeaders,
  type MsgHdrs,
} from './headers.js';
export {
  ensureConsumer,
  ensureStream,
  ensureStreams,
  isPermissionViolation,
  streamProblems,
  TopologyConflictError,
  type ProvisionAction,
  type ProvisionResult,
} from './provision.js';
export { publishJob, PublishFailedError, type OutgoingJob } from './publish.js';
export { isJobType, isPriority, JOB_TYPE_PATTERN, PRIORITIES, subjectMatches, type Priority } from './subjects.js';
export {
  DEFAULT_TOPOLOGY,
  RESERVED_PREFIXES,
  Topology,
  type StreamRole,
  type TopologyOptions,
  type WorkerConsumerOptions,
} from './topology.js';
export {
  createEventPublisher,
  deadLetteredEventId,
  decodeEvents,
  encodeEvent,
  EVENT_KINDS,
  queueJobId,
  type EventInput,
  type EventKind,
  type EventPublisher,
  type LifecycleEvent,
} from './events.js';
export {
  createSchedulerClient,
  publishScheduleRequest,
  requestStopRepeat,
  SCHEDULE_REQUEST_KINDS,
  SCHEDULER_ERROR_CODES,
  SCHEDULER_OPS,
  SCHEDULER_SERVICE_NAME,
  STOP_REPEAT_REASON,
  type ScheduleJobRequest,
  type ScheduleListPage,
  type ScheduleListQuery,
  type SchedulerClient,
  type SchedulerErrorCode,
  type SchedulerOp,
  type ScheduleRequestKind,
  type ScheduleView,
} from './schedule.js';
export {
  carriedEntries,
  carryHeaders,
  fallbackJobId,
  keyedJobId,
  lifeOf,
  msgIds,
  parseDeadLetterMsgId,
  type Hop,
} from './wire.js';
export {
  MicroError,
  MicroUnavailableError,
  requestMicro,
  respondMicroError,
  startMicroService,
  type MicroEndpoint,
  type MicroErrorBody,
  type MicroServer,
  type MicroServiceOptions,
} from './micro.js';
export { provisionJobTypes, serveJobTypes } from './served.js';
export {
  deletePause,
  ensurePausesBucket,
  isPaused,
  pauseKey,
  pauseOf,
  pausesBucket,
  pausesStream,
  putPause,
  watchPauses,
  type PauseMap,
  type PauseRecord,
  type PauseWatch,
} from './pauses.js';
export {
  CLIENT_ROLES,
  DLQ_MANAGER_CONSUMERS,
  DLQ_MANAGER_READ_ENDPOINTS,
  DLQ_MANAGER_SERVICE_NAME,
  eventEmitters,
  EVENTS_EMITTED_BY,
  NATS_PASSWORD_PATTERN,
  NATS_ROLES,
  natsInboxPrefix,
  natsPasswordVariable,
  natsPermissions,
  natsUserName,
  REDRIVE_ACCOUNT,
  renderNatsAuthConfig,
  SCHEDULER_CONSUMER,
  SERVICE_ROLES,
  STREAM_OWNERS,
  type ClientRole,
  type NatsAuthConfigOptions,
  type NatsCredential,
  type NatsPermissions,
  type NatsRole,
  type ServiceRole,
} from './permissions.js';
