import { defaultNames, type ActorNames } from '../../src/internal.js';

/** Names of a test's own stream, subjects and buckets, so tests on one server do not meet. */
export function namesFor(tag: string): ActorNames {
  return defaultNames({
    stream: `S_${tag}`,
    subjectPrefix: `a${tag}`,
    stateBucket: `st_${tag}`,
    controlBucket: `ctl_${tag}`,
    dlqStream: `D_${tag}`,
    outcomeBucket: `out_${tag}`,
    timerBucket: `tm_${tag}`,
  });
}
