import { modelConfig, type ClassOverrides, type ModelConfig } from './model.js';

/**
 * Time, compressed: retries in milliseconds. RETRY_LOCAL_DELAY_MAX 100 ms and
 * RETRY_HANDOFF_THRESHOLD 400 ms split the delays into the three ranges; the class delays keep
 * README's budgets and ×2 growth (and its 20 % jitter) from a base of tens of milliseconds, so a
 * hand-off to the retry-scheduler comes back within a second or two. The services get these
 * through RETRY_CLASSES, RETRY_LOCAL_DELAY_MAX, RETRY_HANDOFF_THRESHOLD and WORKER_MAX_CRASHES.
 */
export const COMPRESSED = {
  localDelayMaxMs: 100,
  handoffThresholdMs: 400,
  maxCrashes: 2,
  classes: {
    network: { baseMs: 20, maxMs: 3_000 },
    timeout: { baseMs: 20, maxMs: 3_000 },
    rate_limit: { baseMs: 600, maxMs: 3_000 },
    server: { baseMs: 50, maxMs: 3_000 },
    database: { baseMs: 40, maxMs: 3_000 },
    unknown: { baseMs: 50, maxMs: 3_000 },
  } satisfies ClassOverrides,
};

/** The model under the compressed configuration. */
export const MODEL_CONFIG: ModelConfig = modelConfig(COMPRESSED.classes, {
  localDelayMaxMs: COMPRESSED.localDelayMaxMs,
  handoffThresholdMs: COMPRESSED.handoffThresholdMs,
  maxCrashes: COMPRESSED.maxCrashes,
});

/** Crash lanes: types `lc-crash-<n>`, each served by one worker at a time, restarted when it dies. */
export const CRASH_LANES = 2;
