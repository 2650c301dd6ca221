/** Cron expressions of recurring timers: checked once, searched within the timers' horizon. */
import { Cron, CronPattern } from 'croner';
import { HORIZON_YEARS, invalidTimer, LAST_CRON_YEAR, MAX_TIME_MS, TIMER_HORIZON_MS } from './effect-limits.js';

/**
 * A compiled search of one expression from one year on, and the earliest time after which it
 * was seen to match nothing (a search that finds nothing costs ~2 ms: a repeat is free).
 */
interface CronSearch {
  cron: Cron;
  noneAfter: number;
}
/** Searches by expression and first year: tens of kilobytes each (croner keeps a 10,000-entry year table). */
const crons = new Map<string, CronSearch>();
const CRON_CACHE_SIZE = 64;
/** A checked expression: its six fields (nicknames expanded, seconds first), and whether no month has a day it allows. */
interface CronFields {
  fields: string;
  noDay: boolean;
}
const cronFields = new Map<string, CronFields>();
/** Days of each month in a leap year. */
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * True when the pattern's days of the month exist in none of its months (`31 2,4,6,9,11`,
 * `30 2`) and the day of the week cannot add one: it never matches, known without a search
 * (a search of the horizon that finds nothing costs ~2 ms).
 */
export function noDayInItsMonths(p: CronPattern): boolean {
  if (p.lastDayOfMonth || p.lastWeekday || p.nearestWeekdays.some(Boolean)) return false;
  // Both fields restricted and no `+`: croner matches the day of the month OR of the week.
  if (!p.starDOW && !p.starDOM && !p.useAndLogic) return false;
  for (let m = 0; m < 12; m++) {
    if (!p.month[m]) continue;
    for (let d = 0; d < (MONTH_DAYS[m] as number); d++) if (p.day[d]) return false;
  }
  return true;
}

/** A cron expression checked, or an `INVALID_TIMER` error for a bad one. */
export function fieldsOf(expr: unknown): CronFields {
  if (typeof expr !== 'string' || expr.length === 0 || expr.length > 200) throw invalidTimer('cron must be a cron expression of at most 200 characters');
  let checked = cronFields.get(expr);
  if (checked === undefined) {
    let pattern: CronPattern;
    try {
      pattern = new CronPattern(expr, undefined, { mode: '5-or-6-parts' });
    } catch (err) {
      throw invalidTimer(`cron ${JSON.stringify(expr)} is not a cron expression: ${err instanceof Error ? err.message : String(err)}`);
    }
    const parts = pattern.pattern.trim().split(/\s+/);
    if (parts.length === 5) parts.unshift('0');
    checked = { fields: parts.join(' '), noDay: noDayInItsMonths(pattern) };
    if (cronFields.size >= 1000) cronFields.clear();
    cronFields.set(expr, checked);
  }
  return checked;
}

/**
 * The next time (ms) a cron expression matches strictly after `after`, searched only within
 * {@link TIMER_HORIZON_MS}: the expression gets a year field (`<year>-<year + 10>`), which
 * bounds croner's search (unbounded, it recursed month by month up to the year 3000 and
 * overflowed the stack for a day no month has). An error when nothing matches in time.
 */
export function nextCron(expr: unknown, after: number): number {
  const { fields, noDay } = fieldsOf(expr);
  const from = new Date(after);
  const year = from.getUTCFullYear();
  const never = () => invalidTimer(`cron ${JSON.stringify(expr)} matches no time within 10 years after ${from.toISOString()}`);
  if (year > LAST_CRON_YEAR || noDay) throw never();
  const key = `${fields} ${year}`;
  let search = crons.get(key);
  if (!search) {
    const cron = new Cron(`${fields} ${year}-${Math.min(LAST_CRON_YEAR, year + HORIZON_YEARS)}`, { utcOffset: 0, paused: true, mode: '6-or-7-parts' });
    search = { cron, noneAfter: Infinity };
    if (crons.size >= CRON_CACHE_SIZE) crons.clear();
    crons.set(key, search);
  }
  if (after >= search.noneAfter) throw never();
  const next = search.cron.nextRun(from)?.getTime();
  if (next === undefined) search.noneAfter = after;
  if (next === undefined || next - after > TIMER_HORIZON_MS || next > MAX_TIME_MS) throw never();
  return next;
}

