export { DEFAULT_DATABASE_URL, databaseEnv, postgresUrl } from './config.js';
export { ensureDatabase } from './database.js';
export { isConnectionFailure, rethrowUnavailable, StoreUnavailableError } from './errors.js';
export { migrate, MIGRATIONS_TABLE, type MigrateOptions } from './migrate.js';
export { closePool, createPool, type Pool, type PoolSettings } from './pool.js';
export { createStepStore, type StepLookup, type StepStore } from './steps.js';
export { AbandonedError, inTransaction, isTransient, STORE_RETRY, untilStored } from './transaction.js';
