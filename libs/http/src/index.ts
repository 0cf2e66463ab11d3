export { createHttpApp, routeTable, toErrorBody, type HttpAppOptions, type RouteInfo } from './app.js';
export {
  bearerToken,
  createCredentialCheck,
  guardRoutes,
  NO_CALLERS,
  presentedKey,
  PUBLIC,
  type CredentialCheckOptions,
  type Principal,
  type RouteAuth,
} from './auth.js';
export { errorBodySchema, HttpError, type ErrorBody } from './errors.js';
export {
  createSessions,
  CSRF_HEADER,
  parseCookies,
  type SessionClaims,
  type SessionOptions,
  type Sessions,
} from './session.js';
export { checkName, registerProbes, type ProbeOptions } from './probes.js';
export { createValidators, describeSchemaError, type Validators } from './validation.js';
