export { createHttpApp, toErrorBody, type HttpAppOptions } from './app.js';
export { createKeyCheck, presentedKey } from './auth.js';
export { errorBodySchema, HttpError, type ErrorBody } from './errors.js';
export { registerProbes, type ProbeOptions } from './probes.js';
