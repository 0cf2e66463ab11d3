export {
  checkCron,
  isTimeZone,
  MAX_EVERY_MS,
  MIN_EVERY_MS,
  MISSED_POLICIES,
  parseRepeatSpec,
  RepeatSpecError,
  repeatSpecToJson,
  type MissedPolicy,
  type RepeatSpec,
} from './spec.js';
export { catchUpFrom, cronAfter, firstFire, nextFire, nextFireAfter, upcomingFires } from './occurrences.js';
export { MAX_CATCH_UP_FIRES, planFire, type DueFire, type FirePlan } from './plan.js';
